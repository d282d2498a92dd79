"""Geometry, AP and the numpy facts the fast evaluator relies on."""

import numpy as np
import pytest

from pcca_plugin.evaluation.functional import (
    box_iou,
    nms_tubelets,
    precision_recall,
    segment_mean,
    tube_iou,
    voc_ap,
)
from pcca_plugin.testing import evaluation_reference as ref


def test_box_iou_conventions_on_known_boxes():
    a = np.array([[0.0, 0.0, 10.0, 10.0]])
    b = np.array([[5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    # no +1: inter 50, union 150; +1: inter 6 * 11 = 66, union 121 + 121 - 66 = 176.
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 0.0]])
    np.testing.assert_allclose(box_iou(a, b, plus_one=True), [[66 / 176, 0.0]])


def test_box_iou_hand_values():
    a = np.array([[0, 0, 2, 2]])
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6], [0, 0, 0, 0]])
    # Overlap 1x1 over union 4 + 4 - 1; itself; disjoint; zero-area box (union 4, inter 0).
    np.testing.assert_allclose(box_iou(a, b), [[1 / 7, 1.0, 0.0, 0.0]])
    np.testing.assert_allclose(box_iou(a, b, empty_union=0.0), [[1 / 7, 1.0, 0.0, 0.0]])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 4)
    assert box_iou(np.zeros((0, 4)), np.zeros((0, 4))).shape == (0, 0)


def test_box_iou_of_an_empty_union_is_nan_unless_the_caller_says():
    """The evaluation keeps the official ``0 / 0 = nan``; proposal matching and the merging of
    one person's GT boxes ask for 0 (``empty_union=0.0``), the other entries unchanged."""
    point = np.array([[3.0, 3.0, 3.0, 3.0]])
    boxes = np.array([[3.0, 3.0, 3.0, 3.0], [0.0, 0.0, 4.0, 4.0], [1.0, 1.0, 2.0, 2.0]])
    plain = box_iou(point, boxes)
    assert np.isnan(plain[0, 0]) and plain[0, 1] == 0.0
    zero = box_iou(point, boxes, empty_union=0.0)
    np.testing.assert_array_equal(zero, [[0.0, 0.0, 0.0]])
    inverted = np.array([[4.0, 4.0, 0.0, 0.0]])  # corners in the wrong order: a negative union
    assert box_iou(inverted, inverted, empty_union=0.0)[0, 0] == 0.0
    rng = np.random.default_rng(6)
    xy = rng.uniform(0, 50, size=(20, 2))
    many = np.concatenate([xy, xy + rng.uniform(1, 30, size=(20, 2))], axis=1)
    np.testing.assert_array_equal(box_iou(many, many, empty_union=0.0), box_iou(many, many))
    float32 = many.astype(np.float32)
    assert box_iou(float32, float32, empty_union=0.0).dtype == np.float32


def test_box_iou_matches_reference_bitwise():
    rng = np.random.default_rng(0)
    boxes = np.sort(rng.uniform(0, 100, size=(30, 2, 2)), axis=1).transpose(0, 2, 1).reshape(30, 4)
    boxes = boxes[:, [0, 1, 2, 3]]
    fast = box_iou(boxes, boxes)
    for j in range(len(boxes)):
        np.testing.assert_array_equal(fast[:, j], ref.iou_many_to_one(boxes, boxes[j]))


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_segment_mean_is_bitwise_np_mean(dtype):
    rng = np.random.default_rng(1)
    counts = rng.integers(1, 700, size=200)
    values = rng.random(int(counts.sum())).astype(dtype)
    fast = segment_mean(values, counts)
    starts = np.cumsum(counts) - counts
    slow = np.array([np.mean(values[s : s + c]) for s, c in zip(starts, counts)])
    assert fast.dtype == slow.dtype
    np.testing.assert_array_equal(fast, slow)


def test_row_wise_argsort_equals_one_dimensional_argsort_with_ties():
    # The batched tubelet suppression sorts rows of a 2D array; ties must come out as in 1D.
    rng = np.random.default_rng(2)
    for size in (2, 5, 11, 17, 24):
        rows = np.round(rng.random((300, size)) * 3) / 3  # heavy ties
        batched = np.argsort(rows, axis=1)
        for r in range(rows.shape[0]):
            np.testing.assert_array_equal(batched[r], np.argsort(rows[r]))


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_tube_iou_matches_reference(dtype):
    rng = np.random.default_rng(3)
    for _ in range(50):
        tubes = []
        for _ in range(2):
            first = int(rng.integers(1, 20))
            frames = np.arange(first, first + int(rng.integers(1, 15)))
            xy = rng.uniform(0, 50, size=(frames.size, 2))
            wh = rng.uniform(5, 40, size=(frames.size, 2))
            tubes.append(np.column_stack([frames, xy, xy + wh]).astype(dtype))
        for mode, part in (('st', 'st'), ('spatial', 'spatial'), ('temporal', 'temporal')):
            fast = tube_iou(tubes[0], tubes[1], mode)
            slow = ref.tube_iou(tubes[0], tubes[1], part)
            assert type(fast) is type(slow)
            np.testing.assert_array_equal(fast, slow)


def test_tube_iou_of_tubes_touching_in_one_frame_is_zero():
    a = np.array([[1, 0, 0, 10, 10], [2, 0, 0, 10, 10], [3, 0, 0, 10, 10]], dtype=np.float64)
    b = np.array([[3, 0, 0, 10, 10], [4, 0, 0, 10, 10]], dtype=np.float64)
    assert tube_iou(a, b) == 0.0
    assert tube_iou(a, b, 'spatial') == 1.0


def test_voc_ap_matches_reference_and_known_values():
    # Two GT, detections TP, FP, TP: precision 1, 1/2, 2/3 -> AP = 0.5 * 1 + 0.5 * 2/3.
    precision, recall = precision_recall(np.array([True, False, True]), 2)
    assert voc_ap(precision, recall) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert voc_ap(np.zeros(0), np.zeros(0)) == 0.0
    # TP, FP, TP over 2 GT: recall .5 .5 1, precision 1 .5 2/3 -> .5 * 1 + .5 * 2/3.
    assert voc_ap(np.array([1.0, 0.5, 2 / 3]), np.array([0.5, 0.5, 1.0])) == pytest.approx(
        0.5 + 1 / 3
    )
    assert voc_ap(np.array([1.0]), np.array([1.0])) == pytest.approx(1.0)
    rng = np.random.default_rng(4)
    for _ in range(20):
        is_tp = rng.random(40) < 0.4
        precision, recall = precision_recall(is_tp, 25)
        assert voc_ap(precision, recall) == ref.all_point_ap(np.column_stack([precision, recall]))


def test_nms_tubelets_matches_reference_with_ties_and_overlaps():
    rng = np.random.default_rng(5)
    for _ in range(200):
        n = int(rng.integers(1, 14))
        xy = rng.uniform(0, 30, size=(n, 2))
        wh = rng.uniform(5, 30, size=(n, 2))
        scores = np.round(rng.random((n, 1)) * 4) / 4
        dets = np.hstack([xy, xy + wh, scores])
        if n > 2:
            dets[1, :4] = dets[0, :4] + 0.5  # a near duplicate, suppressed
        np.testing.assert_array_equal(nms_tubelets(dets), ref.nms(dets))
