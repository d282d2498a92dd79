"""frame-mAP of the MultiSports protocol, vectorised over detections.

Protocol: ``docs/protocol.md`` ("frame-mAP"), the official
``evaluate_multisports.py`` ``frameAP``. The official tool walks every
detection of a class in score order and matches it in Python. Here, per
class (one class at a time, so memory stays at the input plus one class):

1. the detections keep their input order and are ranked with the same
   ``np.argsort(-scores)`` call, so tied scores rank as officially under the
   same numpy build (``tie_order='stable'``: ties in input order, the same
   on every machine);
2. each detection's best ground-truth box of its (video, frame) - the first
   maximum of the IoUs, or no match when an IoU is NaN, as ``np.argmax``
   decides - is found for all detections at once with a dense
   (video, frame) -> ground-truth-slot table;
3. a detection is a true positive when its best IoU reaches the threshold
   and no better-ranked detection took that ground-truth box first
   (``np.unique`` on the ranked matches).

Shape shorthand: M detections, G ground-truth boxes of a class, V videos,
F frames.
"""

import warnings
from typing import Union

import numpy as np

from .ap import (
    PERCENT,
    APResult,
    check_tie_order,
    mean_of,
    precision_recall,
    rank_descending,
    voc_ap,
)
from .geometry import box_area, box_intersection
from .ground_truth import (
    GroundTruth,
    check_frame_detections,
    load_frame_detections,
    load_ground_truth,
)
from .progress import track

#: frame-mAP's IoU threshold in the MultiSports challenge.
FRAME_IOU_THR = 0.5


class GTBoxRows:
    """Every GT box of the evaluated videos, grouped by label (tube order kept), built once.

    Attributes:
        order: ``(B,)`` rows of the concatenated tubes, label-major, tube order kept.
        starts: ``(C,)`` first entry of each label in ``order``.
        counts: ``(C,)`` GT boxes of each label.
        video: ``(B,)`` int64 video of every concatenated row.
        frame: ``(B,)`` frame numbers as given.
        boxes: ``(B, 4)`` float64 boxes (float32 tubes upcast exactly).
    """

    def __init__(self, gt: GroundTruth):
        lengths = np.array([len(tube) for tube in gt.tubes], dtype=np.int64)  # (T,)
        rows = np.concatenate(gt.tubes) if gt.tubes else np.zeros((0, 5))  # (B, 5) float64
        labels = np.repeat(gt.tube_label, lengths)  # (B,)
        self.order = np.argsort(labels, kind='stable')
        self.counts = np.bincount(labels, minlength=gt.num_labels)
        self.starts = np.cumsum(self.counts) - self.counts
        self.video = np.repeat(gt.tube_video, lengths)
        self.frame = rows[:, 0]
        self.boxes = rows[:, 1:5].astype(np.float64)

    def of_label(self, label: int, stride: int):
        """GT boxes of one label sorted by (video, frame), tubes in GT order within a frame.

        Returns:
            ``(keys, boxes)``: ``(G,)`` int64 ``video * stride + frame`` keys and
            ``(G, 4)`` float64 boxes.
        """
        sel = self.order[self.starts[label] : self.starts[label] + self.counts[label]]  # (G0,)
        frames = self.frame[sel]
        keys = self.video[sel] * stride + np.clip(frames.astype(np.int64), 0, stride - 1)
        # GT frames outside 1..nframes never meet a detection (those are validated into range).
        in_range = (frames >= 1) & (frames <= stride - 1)
        order = np.argsort(keys, kind='stable')  # tube order kept within a (video, frame)
        order = order[in_range[order]]
        return keys[order], self.boxes[sel[order]]


def _best_gt(
    array: np.ndarray,
    rows: np.ndarray,
    det_keys: np.ndarray,
    gt_keys: np.ndarray,
    gt_boxes: np.ndarray,
    table_size: int,
):
    """Best GT box of every detection among the GT boxes sharing its key.

    Args:
        array: ``(M, 8)`` all frame detections (their dtype is the area's dtype).
        rows: ``(M_c,)`` rows of this class's detections.
        det_keys: ``(M_c,)`` int64 (video, frame) keys.
        gt_keys: ``(G,)`` sorted keys of the GT boxes.
        gt_boxes: ``(G, 4)`` float64 GT boxes.
        table_size: number of possible keys.

    Returns:
        ``(best, best_iou)``: ``(M_c,)`` index into the GT boxes (-1 when the
        key has none or an IoU is NaN) and ``(M_c,)`` float64 IoU of it.
    """
    count_table = np.bincount(gt_keys, minlength=table_size)
    start_table = np.cumsum(count_table) - count_table
    counts = count_table[det_keys]  # (M_c,)
    best = np.full(det_keys.size, -1, dtype=np.int64)
    best_iou = np.full(det_keys.size, -np.inf)
    at_gt = np.flatnonzero(counts)  # only detections on a frame with GT of the class
    if at_gt.size == 0:
        return best, best_iou
    counts = counts[at_gt]
    starts = start_table[det_keys[at_gt]]
    det_boxes = array[rows[at_gt], 4:8]  # (A, 4) input dtype
    # Detection areas in the detections' own dtype, as the official per-box call computes them.
    det_area = box_area(det_boxes).astype(np.float64)
    det_boxes = det_boxes.astype(np.float64)
    sub_best = np.full(at_gt.size, -1, dtype=np.int64)
    sub_iou = np.full(at_gt.size, -np.inf)
    has_nan = np.zeros(at_gt.size, dtype=bool)
    for slot in range(int(counts.max())):
        idx = np.flatnonzero(counts > slot)
        gt_rows = starts[idx] + slot
        gt_b = gt_boxes[gt_rows]
        inter = box_intersection(gt_b, det_boxes[idx])
        with np.errstate(divide='ignore', invalid='ignore'):
            iou = inter / (box_area(gt_b) + det_area[idx] - inter)
        nan = np.isnan(iou)
        better = (iou > sub_iou[idx]) | (slot == 0)
        better &= ~has_nan[idx] & ~nan
        sub_best[idx[better]] = gt_rows[better]
        sub_iou[idx[better]] = iou[better]
        has_nan[idx[nan]] = True  # np.argmax returns the first NaN: never a match
    sub_best[has_nan] = -1
    best[at_gt] = sub_best
    best_iou[at_gt] = sub_iou
    return best, best_iou


def frame_ap(
    gt: Union[str, dict, GroundTruth],
    detections: Union[str, np.ndarray],
    iou_thr: float = FRAME_IOU_THR,
    keep_pr: bool = False,
    progress: bool = False,
    tie_order: str = 'official',
) -> APResult:
    """frame-mAP at one IoU threshold, equal to the official ``frameAP``.

    Args:
        gt: GT file path, dict or :class:`GroundTruth`.
        detections: ``(M, 8)`` array ``[video_index, frame, label, score, x1,
            y1, x2, y2]`` (pixels, frames from 1) or a pickle path.
        iou_thr: a detection matches a GT box with IoU ``>= iou_thr``.
        keep_pr: keep each class's precision/recall arrays in the result.
        progress: show a progress bar over classes.
        tie_order: ``'official'`` ranks tied scores with the official
            ``np.argsort(-scores)`` (the figures then match the official tool
            run under the same numpy build); ``'stable'`` ranks ties in
            input order, the same figures on every machine.

    Returns:
        :class:`APResult` in percent over the evaluated classes that have
        ground truth. Empty detections give 0 with a warning.
    """
    check_tie_order(tie_order)
    gt = load_ground_truth(gt)
    detections, source = load_frame_detections(detections)
    dets = check_frame_detections(detections, gt, source)
    if dets.array.shape[0] == 0:
        warnings.warn(f'{source}: no frame detections; every class scores AP 0', stacklevel=2)
    stride = int(gt.nframes.max()) + 1
    table_size = gt.num_videos * stride
    by_label = np.argsort(dets.label, kind='stable')  # (M,) input order kept per label
    label_counts = np.bincount(dets.label, minlength=gt.num_labels)
    label_starts = np.cumsum(label_counts) - label_counts
    num_boxes = gt.num_boxes_per_label()
    gt_rows = GTBoxRows(gt)
    per_class, class_indices, num_gt, num_det, prs = {}, [], {}, {}, {}
    aps = []
    labels = [c for c in range(gt.num_labels) if gt.evaluated[c] and num_boxes[c] > 0]
    for label in track(labels, 'frame-mAP classes', progress):
        name = gt.labels[label]
        rows = by_label[label_starts[label] : label_starts[label] + label_counts[label]]
        scores = dets.array[rows, 3]  # (M_c,) input order, input dtype
        order = rank_descending(scores, tie_order)  # official: the official call, ties included
        gt_keys, gt_boxes = gt_rows.of_label(label, stride)
        det_keys = dets.video[rows].astype(np.int64) * stride + dets.frame[rows]  # (M_c,)
        best, best_iou = _best_gt(dets.array, rows, det_keys, gt_keys, gt_boxes, table_size)
        match = np.where((best >= 0) & (best_iou >= iou_thr), best, -1)[order]  # rank order
        is_tp = np.zeros(order.size, dtype=bool)
        candidates = np.flatnonzero(match >= 0)
        _, first = np.unique(match[candidates], return_index=True)
        is_tp[candidates[first]] = True
        precision, recall = precision_recall(is_tp, int(num_boxes[label]))
        ap = voc_ap(precision, recall) * PERCENT
        per_class[name] = ap
        aps.append(ap)
        class_indices.append(label)
        num_gt[name] = int(num_boxes[label])
        num_det[name] = int(rows.size)
        if keep_pr:
            prs[name] = (precision, recall)
    if not aps:
        warnings.warn(
            f'{gt.source}: no evaluated class has ground truth; frame-mAP is 0', stacklevel=2
        )
    return APResult(
        mean_ap=mean_of(aps),
        per_class=per_class,
        class_indices=class_indices,
        num_gt=num_gt,
        num_det=num_det,
        pr=prs if keep_pr else None,
        iou_thr=iou_thr,
    )
