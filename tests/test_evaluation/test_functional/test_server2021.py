"""The 2021 challenge server's scorer: equal to a plain reference run under numpy 1.x.

The reference (``pcca_plugin/testing/server2021_reference.py``) walks one
detection at a time and lets numpy 1.26 do the arithmetic, as the server
did; the vectorised scorer runs here under numpy 2. Cases: the seeded
agreement cases, crowds where a detection's best GT is often taken (so that
removing matched GT matters), whole-pixel boxes (IoUs exactly on the
thresholds), float32 and float64 tubes and detections, and a GT written by a
real numpy 1.26.4 (``pcca_plugin/testing/numpy1_pickles``), not by this
project. Tied scores are compared with ``tie_order='stable'`` (numpy's
default sort orders ties differently in numpy 1.26 and 2.x).
"""

import json
import pickle

import numpy as np
import pytest

from pcca_plugin.evaluation.functional import (
    SERVER2021_FIGURES,
    act_ap,
    frame_ap,
    link_tubes,
    read_submission,
    server2021_figures,
    server2021_frame_map,
    write_submission_archive,
)
from pcca_plugin.evaluation.functional.server2021 import match_with_removal
from pcca_plugin.evaluation.metrics import MultiSportsTubeMetric
from pcca_plugin.testing import run_tool
from pcca_plugin.testing.evaluation import (
    make_case,
    make_crowded_case,
    make_metric_gt,
    perfect_samples,
    server2021_reference_figures,
)
from pcca_plugin.testing.numpy1_reference import reference_path
from pcca_plugin.utils.multisports_format import EXCLUDED_CLASS_NAMES
from pcca_plugin.utils.pickle_io import LEAN_TEXT_MIN_BYTES, dump_pickle

#: The issue's bar: every figure equal to the 2021 scorer to this.
TOLERANCE = 1e-6
LINK_LEN_THR = 3


def _with_tubes(gt, dets):
    return gt, dets, link_tubes(gt, dets, len_thr=LINK_LEN_THR)


def _numpy1_written_case():
    """The GT dict numpy 1.26.4 pickled (not this project), with jittered GT boxes as detections."""
    with open(reference_path(2), 'rb') as f:
        gt = pickle.load(f)
    gt = {key: gt[key] for key in ('labels', 'test_videos', 'nframes', 'resolution', 'gttubes')}
    rng = np.random.default_rng(7)
    videos = gt['test_videos'][0]
    rows = []
    for index, video in enumerate(videos):
        for label, tubes in gt['gttubes'][video].items():
            for tube in tubes:
                for row in tube:
                    for _ in range(2):
                        box = row[1:5] + rng.normal(0, 1.5, 4)
                        rows.append([index, row[0], label, rng.random(), *box])
    return _with_tubes(gt, np.array(rows, dtype=np.float64))


def _cases_without_ties():
    cases = [_numpy1_written_case()]
    for seed in range(2):
        cases.append(_with_tubes(*make_case(seed, tube_dtype=np.float32, tie_grid=0.0)))
        cases.append(
            _with_tubes(*make_case(seed, tube_dtype=np.float64, tie_grid=0.0, det_dtype=np.float32))
        )
        cases.append(_with_tubes(*make_crowded_case(seed, tie_grid=0.0, integer_boxes=bool(seed))))
        cases.append(
            _with_tubes(
                *make_crowded_case(seed, tube_dtype=np.float64, det_dtype=np.float32, tie_grid=0.0)
            )
        )
    return cases


def _gt_file(gt, folder):
    path = folder / 'gt.pkl'
    dump_pickle(gt, path)
    return path


def _assert_same(ours, reference, where):
    assert list(ours) == list(SERVER2021_FIGURES)
    for name in SERVER2021_FIGURES:
        assert ours[name] == pytest.approx(reference[name], abs=TOLERANCE), (where, name)


def test_equals_the_numpy1_reference(tmp_path):
    cases = _cases_without_ties()
    version, reference = server2021_reference_figures(cases, str(tmp_path))
    assert version.startswith('1.'), version  # the server's numpy, really
    for i, ((gt, frames, tubes), expected) in enumerate(zip(cases, reference)):
        _assert_same(server2021_figures(gt, frames, tubes), expected, f'case {i}')


def test_tied_scores_in_stable_order_equal_the_reference(tmp_path):
    cases = [
        _with_tubes(*make_crowded_case(seed, integer_boxes=True, tie_grid=0.125))
        for seed in range(2)
    ]
    cases.append(_with_tubes(*make_case(3, tie_grid=0.25)))
    _, reference = server2021_reference_figures(cases, str(tmp_path), sort_kind='stable')
    for i, ((gt, frames, tubes), expected) in enumerate(zip(cases, reference)):
        _assert_same(server2021_figures(gt, frames, tubes, 'stable'), expected, f'case {i}')


def _one_frame_gt(boxes, nframes=1):
    """One video, one label ('run', evaluated), one single-frame tube per box."""
    tubes = [np.array([[1, *box]], dtype=np.float64) for box in boxes]
    return dict(
        labels=['run'],
        test_videos=[['v']],
        nframes={'v': nframes},
        resolution={'v': (100, 100)},
        gttubes={'v': {0: tubes}},
    )


def test_a_detection_whose_best_box_is_taken_matches_the_next():
    # Two GT boxes side by side; both detections overlap the first best, the second also
    # overlaps the other with IoU >= 0.5. The server removes the matched box: 2 TPs.
    gt = _one_frame_gt([[0, 0, 40, 40], [4, 0, 44, 40]])
    dets = np.array([[0, 1, 0, 0.9, 0, 0, 40, 40], [0, 1, 0, 0.8, 1, 0, 41, 40]], dtype=np.float64)
    assert server2021_frame_map(gt, dets) == pytest.approx(100.0)
    # Today's protocol counts the second as a repeat of the first box's match.
    assert frame_ap(gt, dets).mean_ap == pytest.approx(50.0)


def test_match_with_removal_walks_in_rank_order():
    # Three detections in one key, three GT; detection 1 and 2 both prefer GT 0.
    det_key = np.zeros(3, dtype=np.int64)
    pair_det = np.array([0, 1, 1, 2, 2])
    pair_gt = np.array([0, 0, 1, 0, 2])
    pair_iou = np.array([0.9, 0.8, 0.6, 0.7, 0.4])
    np.testing.assert_array_equal(
        match_with_removal(det_key, pair_det, pair_gt, pair_iou, 0.5), [True, True, False]
    )
    # A NaN among the remaining GT: numpy's argmax picks it, never a match.
    with_nan = np.array([0.9, np.nan, 0.6, 0.7, 0.4])
    np.testing.assert_array_equal(
        match_with_removal(det_key, pair_det, pair_gt, with_nan, 0.5), [True, False, False]
    )


def test_one_pixel_added_to_box_sides():
    # Plain IoU 1/3 (a false positive today), IoU with +1 sides 8/16 = 0.5 (a match).
    gt = _one_frame_gt([[0, 0, 3, 3]])
    dets = np.array([[0, 1, 0, 0.5, 0, 0, 3, 1]], dtype=np.float64)
    assert frame_ap(gt, dets).mean_ap == pytest.approx(0.0)
    assert server2021_frame_map(gt, dets) == pytest.approx(100.0)


def test_act_ap_is_a_float32_trapezoid_from_precision_one():
    precision = np.array([1.0, 0.5, 2 / 3])
    recall = np.array([1 / 3, 1 / 3, 2 / 3])
    value = act_ap(precision, recall)
    assert value.dtype == np.float32
    p = np.float32([1, 1, 0.5, 2 / 3])
    r = np.float32([0, 1 / 3, 1 / 3, 2 / 3])
    expected = np.float32(1 / 3) * (p[0] + p[1]) / 2 + np.float32(1 / 3) * (p[2] + p[3]) / 2
    assert value == pytest.approx(float(expected), abs=1e-7)
    assert act_ap(np.zeros(0), np.zeros(0)) == 0  # no detection: AP 0
    assert r.dtype == np.float32


def test_command_line_writes_exactly_the_six_figures(tmp_path):
    gt, frames, tubes = _with_tubes(*make_crowded_case(0, tie_grid=0.0))
    dump_pickle(gt, tmp_path / 'gt.pkl')
    submission = tmp_path / 'res'
    dump_pickle(frames, submission / 'frame_detections.pkl')
    dump_pickle(tubes, submission / 'video_detections.pkl')
    out = tmp_path / 'scores.json'
    done = run_tool(
        'eval_multisports.py', 'server2021', tmp_path / 'gt.pkl', submission, '--json', out
    )
    assert done.returncode == 0, done.stderr
    written = json.loads(out.read_text())
    assert list(written) == list(SERVER2021_FIGURES)
    _assert_same(written, server2021_figures(gt, frames, tubes), 'command line')
    for name in SERVER2021_FIGURES:
        assert name in done.stdout


@pytest.mark.parametrize(
    'column, value, named',
    [(2, 9, 'label 9'), (0, 5, 'video index 5')],
    ids=['label', 'video-index'],
)
def test_command_line_names_out_of_range_rows(tmp_path, column, value, named):
    gt, frames, tubes = _with_tubes(*make_crowded_case(0, tie_grid=0.0))
    frames = frames.copy()
    frames[3, column] = value
    dump_pickle(gt, tmp_path / 'gt.pkl')
    dump_pickle(frames, tmp_path / 'res' / 'frame_detections.pkl')
    dump_pickle(tubes, tmp_path / 'res' / 'video_detections.pkl')
    out = tmp_path / 'scores.json'
    done = run_tool(
        'eval_multisports.py', 'server2021', tmp_path / 'gt.pkl', tmp_path / 'res', '--json', out
    )
    assert done.returncode == 1
    assert 'frame_detections.pkl' in done.stderr and 'row 3' in done.stderr, done.stderr
    assert named in done.stderr, done.stderr
    assert not out.exists()  # nothing written


def test_metric_reports_the_six_figures_under_its_prefix(tmp_path):
    gt = make_metric_gt()
    dumped = tmp_path / 'frames.pkl'
    metric = MultiSportsTubeMetric(
        gt_file=gt, protocol='server2021', dump_frame_detections=str(dumped)
    )
    samples = perfect_samples(gt)
    metric.process({}, samples)
    figures = metric.evaluate(len(samples))
    assert list(figures) == [f'server2021/{name}' for name in SERVER2021_FIGURES]
    assert figures['server2021/F@0.5'] == pytest.approx(100.0)
    frames = pickle.loads(dumped.read_bytes())
    tubes = link_tubes(gt, frames)
    _assert_same(
        {name: figures[f'server2021/{name}'] for name in SERVER2021_FIGURES},
        server2021_figures(gt, frames, tubes),
        'metric',
    )


def test_metric_refuses_an_unknown_protocol():
    with pytest.raises(ValueError, match='server2021'):
        MultiSportsTubeMetric(gt_file=make_metric_gt(), protocol='server2022')


def test_video_detections_must_list_every_scored_label():
    gt, frames, tubes = _with_tubes(*make_crowded_case(0, tie_grid=0.0))
    scored = [c for c, name in enumerate(gt['labels']) if name not in EXCLUDED_CLASS_NAMES]
    del tubes[scored[-1]]
    with pytest.raises(ValueError, match=f'no entry for label {scored[-1]}.*empty list'):
        server2021_figures(gt, frames, tubes)
    tubes[scored[-1]] = []
    server2021_figures(gt, frames, tubes)  # an empty list is what the server needed


def test_a_large_archive_scores_like_its_arrays(tmp_path):
    """Frame detections of several MiB travel as chunked latin-1 text: read back bit for bit."""
    gt, frames, tubes = _with_tubes(*make_crowded_case(1, tie_grid=0.0))
    repeats = -(-LEAN_TEXT_MIN_BYTES // frames.nbytes) + 1
    frames = np.concatenate([frames] * repeats)  # the copies are false positives
    assert frames.nbytes > LEAN_TEXT_MIN_BYTES
    path = write_submission_archive(
        str(tmp_path / 'P_submission.zip'), frames, tubes, len(gt['labels'])
    )
    submission = read_submission(path)
    np.testing.assert_array_equal(submission.frame_detections, frames)
    assert submission.frame_detections.dtype == np.float64
    done = run_tool('eval_multisports.py', 'server2021', _gt_file(gt, tmp_path), path)
    assert done.returncode == 0, done.stderr
    expected = server2021_figures(gt, frames, tubes)
    assert f'{expected["F@0.5"]:10.4f}' in done.stdout
