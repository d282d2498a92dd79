"""tools/ensemble.py: weighted mean of frame detections on the same proposals."""

import numpy as np
import pytest

from pcca_plugin.evaluation import frame_ap
from pcca_plugin.utils.pickle_io import dump_pickle, load_pickle

from .helpers import load_tool

ensemble = load_tool('tools/ensemble.py', 'pcca_tools_ensemble')

NUM_CLASSES = 3
VIDEOS = ['sport/v_a', 'sport/v_b']
NUM_FRAMES = 10


def make_gt():
    tube = np.array([[f, 10, 10, 50, 80] for f in range(1, NUM_FRAMES + 1)], dtype=np.float32)
    return dict(
        labels=['a', 'b', 'c'],
        train_videos=[[]],
        test_videos=[VIDEOS],
        nframes=dict.fromkeys(VIDEOS, NUM_FRAMES),
        resolution=dict.fromkeys(VIDEOS, (120, 160)),
        gttubes={v: {i: [tube]} for i, v in enumerate(VIDEOS)},
    )


def make_dets(seed):
    """Rows as MultiSportsTubeMetric writes them: per frame, box-major, every class."""
    rng = np.random.default_rng(0)  # same boxes for every seed
    scores = np.random.default_rng(seed)
    rows = []
    for video in range(len(VIDEOS)):
        for frame in range(1, NUM_FRAMES + 1):
            for _ in range(2):
                x1, y1 = rng.uniform(0, 60, 2)
                box = [x1, y1, x1 + 40, y1 + 60]
                for label in range(NUM_CLASSES):
                    rows.append([video, frame, label, scores.uniform(), *box])
    return np.array(rows)


def shuffled_frames(dets, seed=1):
    """The same rows with the frames in another order (rows inside a frame kept)."""
    keys = dets[:, 0] * 1000 + dets[:, 1]
    order = np.random.default_rng(seed).permutation(np.unique(keys))
    return np.concatenate([dets[keys == k] for k in order])


def test_weighted_mean_matches_a_row_by_row_reference():
    a, b, c = make_dets(1), make_dets(2), make_dets(3)
    b = shuffled_frames(b)
    b[:, 4:8] += 1e-4  # another input scale: the same boxes up to rounding
    weights = [2.0, 1.0, 1.0]
    merged = ensemble.ensemble_frame_detections([a, b, c], weights)

    # Reference: match rows by (video, frame, label, occurrence in frame) with dicts.
    def table(dets):
        out, seen = {}, {}
        for row in dets:
            key = (int(row[0]), int(row[1]), int(row[2]))
            seen[key] = seen.get(key, -1) + 1
            out[key + (seen[key],)] = row[3]
        return out

    ta, tb, tc = table(a), table(b), table(c)
    tm = table(merged)
    assert set(tm) == set(ta)
    for key, score in tm.items():
        assert score == pytest.approx((2 * ta[key] + tb[key] + tc[key]) / 4)
    np.testing.assert_allclose(np.sort(merged[:, 4:8], axis=0), np.sort(a[:, 4:8], axis=0))


def test_cli_writes_a_file_the_evaluator_reads(tmp_path):
    gt = make_gt()
    paths = []
    for seed in (1, 2):
        path = tmp_path / f'dets_{seed}.pkl'
        dump_pickle(make_dets(seed), str(path))
        paths.append(str(path))
    gt_path = tmp_path / 'gt.pkl'
    dump_pickle(gt, str(gt_path))
    out = tmp_path / 'ensemble.pkl'
    ensemble.main(paths + ['-o', str(out), '--gt', str(gt_path), '--weights', '1', '3'])
    merged = load_pickle(str(out))
    expected = (make_dets(1)[:, 3] + 3 * make_dets(2)[:, 3]) / 4
    np.testing.assert_allclose(merged[:, 3], expected)
    result = frame_ap(gt, merged)
    assert 0.0 <= result.mean_ap <= 100.0


def test_moved_box_names_the_first_mismatching_frame():
    a, b = make_dets(1), make_dets(2)
    rows = np.flatnonzero((b[:, 0] == 1) & (b[:, 1] == 7))
    b[rows[3], 4] += 5.0  # frame 7 of video 1, second box, first class
    later = np.flatnonzero((b[:, 0] == 1) & (b[:, 1] == 9))
    b[later[0], 5] += 5.0  # a later frame is wrong too; the first one is reported
    with pytest.raises(ensemble.EnsembleMismatchError) as info:
        ensemble.ensemble_frame_detections([a, b], names=['A.pkl', 'B.pkl'], video_names=VIDEOS)
    message = str(info.value)
    assert "video 'sport/v_b' (index 1), frame 7" in message
    assert 'row 3 of the frame' in message and 'A.pkl' in message and 'B.pkl' in message


def test_missing_frame_and_different_row_count_are_named():
    a, b = make_dets(1), make_dets(2)
    missing = b[~((b[:, 0] == 0) & (b[:, 1] == 4))]
    with pytest.raises(ensemble.EnsembleMismatchError, match='video index 0, frame 4: has'):
        ensemble.ensemble_frame_detections([a, missing])
    fewer = np.delete(b, np.flatnonzero((b[:, 0] == 0) & (b[:, 1] == 2))[-1], axis=0)
    with pytest.raises(ensemble.EnsembleMismatchError, match=r'frame 2: 6 rows in .* but 5'):
        ensemble.ensemble_frame_detections([a, fewer])


@pytest.mark.parametrize(
    'weights, message', [([1.0], '2 non-negative'), ([0.0, 0.0], 'not all zero'), ([-1, 2], 'non-')]
)
def test_bad_weights_and_single_file(weights, message):
    a, b = make_dets(1), make_dets(2)
    with pytest.raises(ValueError, match=message):
        ensemble.ensemble_frame_detections([a, b], weights)
    with pytest.raises(ValueError, match='at least 2'):
        ensemble.ensemble_frame_detections([a])
