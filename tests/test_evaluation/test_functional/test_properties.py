"""Property tests (hypothesis) of box IoU, tube linking and average precision.

The example-based tests check chosen cases; these check invariants that must
hold for every input hypothesis generates: IoU's symmetry, range and
conventions; that linked tubes are made of the input's own boxes, frame after
frame, each box used once, each step an IoU of at least the linking
threshold, and equal to the slow reference linker's; that AP never drops
when a detection gets better and is blind to what is ranked after the last
true positive. Coordinates are whole pixels so that float32 tube rows hold
them exactly. Runs are derandomised (the same examples every run, so a CI
failure reproduces) and small (about 10 s on 2 cores).
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pcca_plugin.evaluation.functional import (
    box_iou,
    frame_ap,
    link_tubes,
    precision_recall,
    voc_ap,
)
from pcca_plugin.evaluation.functional.linking import LINK_IOU_THR, MIN_TUBE_SCORE, NMS_TOP_K
from pcca_plugin.testing import evaluation_reference as ref
from pcca_plugin.testing.evaluation import LABELS

#: Figures of the fast and the reference evaluator agree to this (as in test_agreement).
TOLERANCE = 1e-6
#: Shared settings: deterministic examples, no deadline (first calls import and warm up).
PROPERTY_SETTINGS = dict(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
FAST = settings(max_examples=60, **PROPERTY_SETTINGS)
#: Linking runs the slow reference on every example: fewer examples.
SLOW = settings(max_examples=25, **PROPERTY_SETTINGS)
#: Frame size of the generated videos (pixels) and the labels detections use.
WIDTH, HEIGHT = 160, 120
DET_LABELS = (1, 2)  # 'run', 'jump' of cases.LABELS (label 0 is excluded by the challenge)


# ---------------------------------------------------------------- strategies
@st.composite
def boxes(draw, min_side=1, max_side=60):
    """One ``(x1, y1, x2, y2)`` box with whole-pixel corners and positive sides."""
    x1 = draw(st.integers(0, WIDTH - min_side))
    y1 = draw(st.integers(0, HEIGHT - min_side))
    width = draw(st.integers(min_side, max_side))
    height = draw(st.integers(min_side, max_side))
    return [float(x1), float(y1), float(x1 + width), float(y1 + height)]


def box_arrays(min_size=1, max_size=8):
    return st.lists(boxes(), min_size=min_size, max_size=max_size).map(
        lambda rows: np.array(rows, dtype=np.float64).reshape(-1, 4)
    )


#: Scores on a coarse grid (ties, as real detectors give) or free.
scores = st.one_of(
    st.sampled_from([0.1, 0.25, 0.5, 0.75, 0.9]), st.floats(0.01, 1.0, allow_nan=False)
)


@st.composite
def linking_cases(draw):
    """``(gt, dets)``: 1-2 videos of 3-10 frames; persons moving a few pixels per frame,
    each detected under one or two labels, some frames missed, some duplicates."""
    num_videos = draw(st.integers(1, 2))
    videos = [f'sport/v_{i}' for i in range(num_videos)]
    nframes = {video: draw(st.integers(3, 10)) for video in videos}
    rows = []
    for iv, video in enumerate(videos):
        for _ in range(draw(st.integers(0, 3))):  # persons
            x, y, w, h = draw(boxes(min_side=8, max_side=40))
            w, h = w - x, h - y
            step = draw(st.tuples(st.integers(-3, 3), st.integers(-3, 3)))
            labels = draw(
                st.lists(st.sampled_from(DET_LABELS), min_size=1, max_size=2, unique=True)
            )
            for frame in range(1, nframes[video] + 1):
                if draw(st.booleans()) and draw(st.booleans()):  # missed in about 1 frame in 4
                    continue
                jitter = draw(st.tuples(*[st.integers(-2, 2)] * 4))
                x1 = x + step[0] * frame + jitter[0]
                y1 = y + step[1] * frame + jitter[1]
                box = [x1, y1, x1 + w + jitter[2], y1 + h + jitter[3]]
                copies = draw(st.integers(1, 2))  # a duplicate: the suppression acts
                for label in labels:
                    for _ in range(copies):
                        rows.append([iv, frame, label, draw(scores), *box])
    gt = dict(
        labels=list(LABELS),
        train_videos=[[]],
        test_videos=[videos],
        nframes=nframes,
        resolution=dict.fromkeys(videos, (HEIGHT, WIDTH)),
        gttubes={video: {1: [np.array([[1, 0, 0, 10, 10]], dtype=np.float32)]} for video in videos},
    )
    return gt, np.array(rows, dtype=np.float64).reshape(-1, 8)


ranked_matches = st.lists(st.booleans(), min_size=1, max_size=30)


def ap_of(is_tp, num_gt):
    precision, recall = precision_recall(np.asarray(is_tp, dtype=bool), num_gt)
    return voc_ap(precision, recall)


# ---------------------------------------------------------------- box IoU
@FAST
@given(box_arrays(), box_arrays())
def test_box_iou_symmetric_and_bounded(a, b):
    iou = box_iou(a, b)
    assert iou.shape == (len(a), len(b))
    np.testing.assert_array_equal(iou, box_iou(b, a).T)
    assert np.all((iou >= 0) & (iou <= 1))
    np.testing.assert_array_equal(np.diag(box_iou(a, a)), np.ones(len(a)))


@FAST
@given(box_arrays(), box_arrays(), st.integers(-50, 50), st.integers(-50, 50))
def test_box_iou_translation_invariant_and_plus_one_convention(a, b, dx, dy):
    shift = np.array([dx, dy, dx, dy], dtype=np.float64)
    np.testing.assert_array_equal(box_iou(a + shift, b + shift), box_iou(a, b))
    # The +1 convention is the plain IoU of boxes one pixel wider and taller.
    grow = np.array([0, 0, 1, 1], dtype=np.float64)
    np.testing.assert_allclose(
        box_iou(a, b, plus_one=True), box_iou(a + grow, b + grow), rtol=1e-12, atol=0
    )


@FAST
@given(boxes(min_side=2), st.data())
def test_box_iou_of_a_contained_box_and_of_disjoint_boxes(outer, data):
    x1, y1, x2, y2 = outer
    ix1 = data.draw(st.integers(int(x1), int(x2) - 1))
    iy1 = data.draw(st.integers(int(y1), int(y2) - 1))
    inner = [
        ix1,
        iy1,
        data.draw(st.integers(ix1 + 1, int(x2))),
        data.draw(st.integers(iy1 + 1, int(y2))),
    ]
    area = lambda box: (box[2] - box[0]) * (box[3] - box[1])  # noqa: E731
    iou = box_iou(np.array([outer]), np.array([inner], dtype=np.float64))[0, 0]
    assert iou == area(inner) / area(outer)
    right = [x2 + data.draw(st.integers(0, 20)), y1, x2 + 30, y2]  # touching or apart: no overlap
    assert box_iou(np.array([outer]), np.array([right]))[0, 0] == 0


# ---------------------------------------------------------------- linking
@SLOW
@given(linking_cases(), st.integers(1, 4))
def test_linked_tubes_are_consistent_and_equal_the_reference(case, len_thr):
    gt, dets = case
    tubes = link_tubes(gt, dets, len_thr=len_thr)
    reference = ref.link(gt, dets, len_thr=len_thr)
    assert tubes.keys() == reference.keys()
    videos = gt['test_videos'][0]
    used = {}  # (video, label, frame) -> tube rows using a box of that frame
    for label, label_tubes in tubes.items():
        assert len(label_tubes) == len(reference[label])
        for (video, score, tube), (ref_video, ref_score, ref_tube) in zip(
            label_tubes, reference[label]
        ):
            assert video == ref_video and score == ref_score
            np.testing.assert_array_equal(tube, ref_tube)
            iv = videos.index(video)
            frames = tube[:, 0]
            assert np.all(np.diff(frames) == 1)  # one box per frame, no gap
            assert frames[0] >= 1 and frames[-1] <= gt['nframes'][video]
            assert len(tube) >= len_thr and score >= MIN_TUBE_SCORE
            np.testing.assert_allclose(score, np.mean(tube[:, 5].astype(np.float64)), rtol=1e-6)
            for row in tube:
                inputs = dets[(dets[:, 0] == iv) & (dets[:, 1] == row[0]) & (dets[:, 2] == label)]
                same_box = np.all(inputs[:, 4:8] == row[1:5], axis=1)
                assert same_box.any(), 'a tube box that is no detection of its frame and label'
                # The tubelet suppression only lowers scores.
                assert row[5] <= np.float32(inputs[same_box, 3].max()) * (1 + 1e-6)
                used.setdefault((iv, label, int(row[0])), []).append(row[1:5])
            steps = box_iou(tube[:-1, 1:5].astype(np.float64), tube[1:, 1:5].astype(np.float64))
            assert np.all(np.diag(steps) >= LINK_IOU_THR)
    for (iv, label, frame), rows in used.items():
        inputs = dets[(dets[:, 0] == iv) & (dets[:, 1] == frame) & (dets[:, 2] == label)]
        assert len(rows) <= min(len(inputs), NMS_TOP_K)  # each kept box in one tube at most


# ---------------------------------------------------------------- AP
@FAST
@given(ranked_matches, st.integers(0, 5))
def test_ap_bounded_equals_reference_and_falls_with_more_ground_truth(is_tp, missed):
    num_gt = sum(is_tp) + missed
    if num_gt == 0:
        return
    ap = ap_of(is_tp, num_gt)
    assert 0.0 <= ap <= 1.0
    precision, recall = precision_recall(np.asarray(is_tp), num_gt)
    assert ap == float(ref.all_point_ap(np.stack([precision, recall], axis=1)))
    assert ap_of(is_tp, num_gt + 1) <= ap


@FAST
@given(ranked_matches, st.integers(0, 3), st.data())
def test_ap_never_drops_when_a_detection_improves(is_tp, missed, data):
    num_gt = len(is_tp) + missed  # room for every detection to become a true positive
    ap = ap_of(is_tp, num_gt)
    i = data.draw(st.integers(0, len(is_tp) - 1))
    better = list(is_tp)
    better[i] = True  # a false positive becomes a true positive
    assert ap_of(better, num_gt) >= ap
    if i > 0 and is_tp[i] and not is_tp[i - 1]:  # a true positive moves up one rank
        swapped = list(is_tp)
        swapped[i - 1], swapped[i] = True, False
        assert ap_of(swapped, num_gt) >= ap


@FAST
@given(ranked_matches, st.integers(1, 10))
def test_ap_ignores_false_positives_after_the_last_true_positive(is_tp, extra):
    num_gt = max(sum(is_tp), 1)
    assert ap_of(is_tp + [False] * extra, num_gt) == ap_of(is_tp, num_gt)
    perfect = ap_of(sorted(is_tp, reverse=True), sum(is_tp) or 1)  # true positives first
    assert perfect == pytest.approx(1.0 if any(is_tp) else 0.0, abs=1e-12)


@SLOW
@given(linking_cases(), scores)
def test_frame_ap_equals_reference_and_perfect_detections_score_100(case, score):
    gt, dets = case
    # The GT boxes of the case as detections: frame-mAP 100 whatever their (equal) score.
    rows = []
    for iv, video in enumerate(gt['test_videos'][0]):
        for label, label_tubes in gt['gttubes'][video].items():
            for tube in label_tubes:
                rows += [[iv, row[0], label, score, *row[1:5]] for row in tube]
    perfect = np.array(rows, dtype=np.float64)
    assert frame_ap(gt, perfect).mean_ap == pytest.approx(100.0, abs=TOLERANCE)
    result = frame_ap(gt, dets)
    ref_map, ref_per_class = ref.frame_ap(gt, dets, 0.5)
    assert result.mean_ap == pytest.approx(ref_map, abs=TOLERANCE)
    assert result.per_class == pytest.approx(ref_per_class, abs=TOLERANCE)
    # A false positive ranked last changes nothing; ranked first it cannot help.
    far = [0, 1, 1, 0.0, WIDTH - 2, HEIGHT - 2, WIDTH - 1, HEIGHT - 1]
    last = np.concatenate([perfect, [far]])
    assert frame_ap(gt, last).mean_ap == pytest.approx(100.0, abs=TOLERANCE)
    ahead = far[:3] + [2.0] + far[4:]  # the same box, scored above every detection
    assert frame_ap(gt, np.concatenate([perfect, [ahead]])).mean_ap < 100.0
    assert frame_ap(gt, np.concatenate([dets, [ahead]])).mean_ap <= result.mean_ap
