"""The ensemble of frame detections: weighted mean of the scores of rows on the same proposals."""

import numpy as np
import pytest

from pcca_plugin.evaluation import frame_ap
from pcca_plugin.evaluation.functional.ensemble import (
    EnsembleMismatchError,
    ensemble_files,
    ensemble_frame_detections,
)
from pcca_plugin.testing.evaluation import ENSEMBLE_VIDEOS as VIDEOS
from pcca_plugin.testing.evaluation import make_ensemble_dets as make_dets
from pcca_plugin.testing.evaluation import make_ensemble_gt as make_gt
from pcca_plugin.testing.evaluation import write_ensemble_inputs
from pcca_plugin.utils.pickle_io import load_pickle


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
    merged = ensemble_frame_detections([a, b, c], weights)

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


def test_files_give_a_file_the_evaluator_reads(tmp_path):
    paths, gt_path = write_ensemble_inputs(str(tmp_path))
    out = tmp_path / 'ensemble.pkl'
    merged, written = ensemble_files(paths, out=str(out), weights=[1, 3], gt_file=gt_path)
    assert written == {'frame_detections': str(out)}
    np.testing.assert_array_equal(load_pickle(str(out)), merged)
    expected = (make_dets(1)[:, 3] + 3 * make_dets(2)[:, 3]) / 4
    np.testing.assert_allclose(merged[:, 3], expected)
    result = frame_ap(make_gt(), merged)
    assert 0.0 <= result.mean_ap <= 100.0


def test_moved_box_names_the_first_mismatching_frame():
    a, b = make_dets(1), make_dets(2)
    rows = np.flatnonzero((b[:, 0] == 1) & (b[:, 1] == 7))
    b[rows[3], 4] += 5.0  # frame 7 of video 1, second box, first class
    later = np.flatnonzero((b[:, 0] == 1) & (b[:, 1] == 9))
    b[later[0], 5] += 5.0  # a later frame is wrong too; the first one is reported
    with pytest.raises(EnsembleMismatchError) as info:
        ensemble_frame_detections([a, b], names=['A.pkl', 'B.pkl'], video_names=VIDEOS)
    message = str(info.value)
    assert "video 'sport/v_b' (index 1), frame 7" in message
    assert 'row 3 of the frame' in message and 'A.pkl' in message and 'B.pkl' in message


def test_missing_frame_and_different_row_count_are_named():
    a, b = make_dets(1), make_dets(2)
    missing = b[~((b[:, 0] == 0) & (b[:, 1] == 4))]
    with pytest.raises(EnsembleMismatchError, match='video index 0, frame 4: has'):
        ensemble_frame_detections([a, missing])
    fewer = np.delete(b, np.flatnonzero((b[:, 0] == 0) & (b[:, 1] == 2))[-1], axis=0)
    with pytest.raises(EnsembleMismatchError, match=r'frame 2: 6 rows in .* but 5'):
        ensemble_frame_detections([a, fewer])


@pytest.mark.parametrize(
    'weights, message', [([1.0], '2 non-negative'), ([0.0, 0.0], 'not all zero'), ([-1, 2], 'non-')]
)
def test_bad_weights_and_single_file(weights, message):
    a, b = make_dets(1), make_dets(2)
    with pytest.raises(ValueError, match=message):
        ensemble_frame_detections([a, b], weights)
    with pytest.raises(ValueError, match='at least 2'):
        ensemble_frame_detections([a])


def test_files_refuse_bad_arguments_before_writing(tmp_path):
    paths, _ = write_ensemble_inputs(str(tmp_path))
    out = str(tmp_path / 'out.pkl')
    with pytest.raises(ValueError, match='--weights has 3 values for 2 result files'):
        ensemble_files(paths, out=out, weights=[1, 2, 3])
    with pytest.raises(FileNotFoundError, match='missing.pkl: no such result file'):
        ensemble_files([paths[0], str(tmp_path / 'missing.pkl')], out=out)
    with pytest.raises(ValueError, match='exactly one of out'):
        ensemble_files(paths)
    with pytest.raises(ValueError, match='--out-prefix links the tubes.*give --gt'):
        ensemble_files(paths, out_prefix=str(tmp_path / 'submission'))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['dets_1.pkl', 'dets_2.pkl', 'gt.pkl']
