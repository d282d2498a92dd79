"""The fast evaluator agrees with the slow references and mmaction2's port of the official code.

Randomised seeded cases (``pcca_plugin.testing.evaluation.make_case``) have tied scores, empty and
excluded classes, a video without detections, GT tubes touching in one
frame, suppressed near-duplicate boxes, and float32 or float64 tubes.
"""

import warnings

import numpy as np
import pytest

from pcca_plugin.evaluation.functional import (
    frame_ap,
    link_tubes,
    range_thresholds,
    video_ap,
    video_ap_all,
    video_ap_error,
)
from pcca_plugin.testing import evaluation_reference as ref
from pcca_plugin.testing.evaluation import EMPTY_LABEL, LABELS, make_case

#: The protocol's figures must agree to this (they agree exactly in practice).
TOLERANCE = 1e-6
CONFIGS = [
    dict(tube_dtype=np.float32, tie_grid=0.1, det_dtype=np.float64),
    dict(tube_dtype=np.float64, tie_grid=0.0, det_dtype=np.float32),
    dict(tube_dtype=np.float32, tie_grid=0.25, det_dtype=np.float32),
]
SEEDS = range(4)


def _same_tubes(fast, slow):
    assert fast.keys() == slow.keys()
    for label in fast:
        assert len(fast[label]) == len(slow[label]), f'label {label}'
        for (v1, s1, t1), (v2, s2, t2) in zip(fast[label], slow[label]):
            assert v1 == v2 and s1 == s2
            assert t1.dtype == t2.dtype == np.float32
            np.testing.assert_array_equal(t1, t2)


def _assert_same_ap(fast, slow_map, slow_per_class):
    assert fast.mean_ap == pytest.approx(slow_map, abs=TOLERANCE)
    assert fast.per_class.keys() == slow_per_class.keys()
    for name, value in slow_per_class.items():
        assert fast.per_class[name] == pytest.approx(value, abs=TOLERANCE), name


@pytest.mark.parametrize('seed', SEEDS)
@pytest.mark.parametrize('config', CONFIGS, ids=['f32-ties', 'f64-noties', 'f32-coarse'])
def test_fast_equals_reference(seed, config):
    gt, dets = make_case(seed, **config)
    fast_frame = frame_ap(gt, dets, 0.5)
    _assert_same_ap(fast_frame, *ref.frame_ap(gt, dets, 0.5))
    assert LABELS[EMPTY_LABEL] not in fast_frame.per_class  # no GT: not in the mean
    assert LABELS[0] not in fast_frame.per_class  # excluded by the challenge
    for len_thr in (1, 4, 15):
        _same_tubes(link_tubes(gt, dets, len_thr=len_thr), ref.link(gt, dets, len_thr=len_thr))
    tubes = ref.link(gt, dets, len_thr=3)
    for thr in (0.1, 0.2, 0.5, 0.1 + 0.1 * 6):  # 0.7000000000000001 as the official range makes it
        _assert_same_ap(video_ap(gt, tubes, thr), *ref.video_ap(gt, tubes, thr))
    fast_all = video_ap_all(gt, tubes)
    assert fast_all['0.10:0.90'] == pytest.approx(
        ref.video_ap_range(gt, tubes, 0.1, 0.1, 9), abs=TOLERANCE
    )
    assert fast_all['0.50:0.95'] == pytest.approx(
        ref.video_ap_range(gt, tubes, 0.5, 0.05, 10), abs=TOLERANCE
    )
    fast_err = video_ap_error(gt, tubes, 0.5)
    slow_err = ref.video_ap_error(gt, tubes, 0.5)
    for name, row in slow_err['per_class'].items():
        for column, value in row.items():
            assert fast_err['per_class'][name][column] == pytest.approx(float(value), abs=TOLERANCE)
    for column, value in slow_err['mean'].items():
        assert fast_err['mean'][column] == pytest.approx(value, abs=TOLERANCE)


def test_cases_exercise_the_hard_paths():
    """Guard the test data: ties, touching tubes and a detection-free video are really there."""
    gt, dets = make_case(0, **CONFIGS[0])
    _, counts = np.unique(dets[:, 3], return_counts=True)
    assert counts.max() > 10  # tied scores
    last = len(gt['test_videos'][0]) - 1
    assert not np.any(dets[:, 0] == last)  # a video without detections
    touching = 0
    for tubes in gt['gttubes'].values():
        for label_tubes in tubes.values():
            ends = {int(t[-1, 0]) for t in label_tubes}
            touching += sum(int(t[0, 0]) in ends for t in label_tubes)
    assert touching > 0
    assert range_thresholds('0.10:0.90')[6] == 0.1 + 0.1 * 6


def test_no_detections_gives_zero_with_warnings():
    gt, _ = make_case(1)
    with pytest.warns(UserWarning, match='no frame detections'):
        assert frame_ap(gt, np.zeros((0, 8)), 0.5).mean_ap == 0.0
    with pytest.warns(UserWarning, match='no frame detections to link'):
        tubes = link_tubes(gt, np.zeros((0, 8)))
    assert all(len(v) == 0 for v in tubes.values())
    with pytest.warns(UserWarning, match='no video detections'):
        result = video_ap(gt, {}, 0.5)
    assert result.mean_ap == 0.0 and len(result.per_class) > 0


def _mmaction_port():
    from mmaction.evaluation.functional import multisports_utils
    from mmengine.logging import MMLogger

    MMLogger.get_instance('test_agreement')
    return multisports_utils


def _numpy2_iou3dt(mu):
    """mmaction2's iou3dt_voc with the one numpy-2 fix (``int(a)`` -> ``int(a[0])``)."""

    def iou3dt_voc(b1, b2, spatialonly=False, temporalonly=False):
        tmin, tmax = max(b1[0, 0], b2[0, 0]), min(b1[-1, 0], b2[-1, 0])
        if tmax < tmin:
            return 0.0
        inter = tmax - tmin
        union = max(b1[-1, 0], b2[-1, 0]) - min(b1[0, 0], b2[0, 0])
        s1, e1 = np.where(b1[:, 0] == tmin)[0][0], np.where(b1[:, 0] == tmax)[0][0]
        s2, e2 = np.where(b2[:, 0] == tmin)[0][0], np.where(b2[:, 0] == tmax)[0][0]
        if temporalonly:
            return inter / union
        return mu.iou3d_voc(b1[s1 : e1 + 1], b2[s2 : e2 + 1]) * (
            1.0 if spatialonly else inter / union
        )

    return iou3dt_voc


@pytest.mark.parametrize('seed', [0, 1])
def test_matches_mmaction2_port_of_the_official_code(seed, monkeypatch):
    mu = _mmaction_port()
    monkeypatch.setattr(mu, 'iou3dt_voc', _numpy2_iou3dt(mu))
    gt, dets = make_case(seed, **CONFIGS[0])
    assert frame_ap(gt, dets, 0.5).mean_ap == mu.frameAP(gt, dets, 0.5, print_info=False)
    tubes = link_tubes(gt, dets, len_thr=3)
    for thr in (0.2, 0.5):
        assert video_ap(gt, tubes, thr).mean_ap == mu.videoAP(gt, tubes, thr, print_info=False)
    # mmaction2's linker gives every box the last detection's score (a defect); with all
    # scores equal that defect is invisible and its tubes must equal ours, tie order included.
    equal = dets.copy()
    equal[:, 3] = 0.5
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        theirs = mu.link_tubes(gt, equal, len_thre=3)
    _same_tubes(link_tubes(gt, equal, len_thr=3), theirs)
