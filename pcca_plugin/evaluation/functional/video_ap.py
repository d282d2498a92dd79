"""video-mAP and its error analysis, vectorised over (detected tube, GT tube) pairs.

Protocol: ``docs/protocol.md`` ("video-mAP", "videoAP_error"), the official
``videoAP``, ``videoAP_all`` and ``videoAP_error``. The spatio-temporal IoU
of every pair that can meet (same video; same label for the AP) is computed
once, all pairs together, and reused for every threshold; the per-frame IoUs
of all pairs are one array and the per-pair means are numpy-exact segment
means.

Exactness details the official tool implies and this module reproduces:

* the IoU of a float32 pair is computed in float32; a detection's list of
  IoUs becomes a float32 array (compared with the threshold in float32)
  only when every IoU in it is a float32 scalar, i.e. when every candidate
  GT tube overlaps it in time; a non-overlapping pair contributes the Python
  float 0.0 and makes the array float64;
* ``np.argmax`` returns the first maximum, or the first NaN (never a match);
* ranking is ``np.argsort(-np.array(scores))`` over each label's list
  (``tie_order='stable'``: a stable sort, ties in list order).

Shape shorthand: D detected tubes, T GT tubes, P pairs, F per-frame rows.
"""

import math
import warnings
from dataclasses import dataclass
from typing import Dict, List, Mapping, Sequence, Union

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
from .geometry import (
    box_area,
    box_intersection,
    exclusive_corners,
    segment_argmax,
    segment_mean,
)
from .ground_truth import (
    GroundTruth,
    VideoDetections,
    check_video_detections,
    load_detections,
    load_ground_truth,
)
from .progress import track

#: Single thresholds reported for video-mAP.
VIDEO_IOU_THRS = (0.2, 0.5)
#: Official threshold ranges (``videoAP_all``) as ``(first, step, count)``; the
#: thresholds are ``first + step * i`` computed in that order, as officially.
VIDEO_IOU_RANGES = {
    '0.05:0.45': (0.05, 0.05, 9),
    '0.10:0.90': (0.1, 0.1, 9),
    '0.50:0.95': (0.5, 0.05, 10),
}
#: The range reported by the challenge (V@0.1:0.9).
MAIN_RANGE = '0.10:0.90'
#: Error categories of ``videoAP_error`` in the official column order.
ERROR_COLUMNS = ('AP', 'ER', 'EN', 'EL', 'EC', 'ET', 'ECT', 'ECL', 'ETL', 'ECTL', 'EM')
ERROR_TITLES = {
    'AP': 'AP',
    'ER': 'Repeat',
    'EN': 'Extra',
    'EL': 'Loc.',
    'EC': 'Cls.',
    'ET': 'Time',
    'ECT': 'Cls.+Time',
    'ECL': 'Cls.+Loc.',
    'ETL': 'Time+Loc.',
    'ECTL': 'C+T+L',
    'EM': 'missed',
}


def range_thresholds(name: str) -> List[float]:
    """The thresholds of an official range, e.g. ``'0.10:0.90'`` -> 0.1, 0.2, ..., 0.9."""
    first, step, count = VIDEO_IOU_RANGES[name]
    return [first + step * i for i in range(count)]


@dataclass
class TubeRows:
    """Tubes laid end to end for vectorised geometry.

    With ``plus_one`` (the 2021 challenge scorer's convention, see
    :mod:`.server2021`) ``boxes`` hold the far corners plus one pixel
    (:func:`exclusive_corners`) and ``area`` the ``+1`` areas, each computed
    in the tube's own dtype as that scorer does; the plain intersection of
    such boxes is then that scorer's overlap.
    """

    start: np.ndarray  # (N,) float64 first frame
    end: np.ndarray  # (N,) float64 last frame
    offset: np.ndarray  # (N,) first row in the flat arrays
    is_f32: np.ndarray  # (N,) bool, tube stored as float32
    boxes: np.ndarray  # (F, 4) float64 (exact copy of float32 values)
    area: np.ndarray  # (F,) float64, computed in the tube's own dtype

    @classmethod
    def from_list(cls, tubes: Sequence[np.ndarray], plus_one: bool = False) -> 'TubeRows':
        n = len(tubes)
        if n == 0:
            z = np.zeros(0)
            return cls(z, z, np.zeros(0, np.int64), np.zeros(0, bool), np.zeros((0, 4)), z)
        lengths = np.array([len(t) for t in tubes], dtype=np.int64)
        is_f32 = np.array([t.dtype == np.float32 for t in tubes])
        if plus_one:
            corners = [exclusive_corners(t[:, 1:5]) for t in tubes]
        else:
            corners = [t[:, 1:5] for t in tubes]
        boxes = np.concatenate([c.astype(np.float64) for c in corners])  # (F, 4)
        area = np.concatenate(
            [box_area(t[:, 1:5], plus_one).astype(np.float64) for t in tubes]
        )  # (F,)
        return cls(
            start=np.array([t[0, 0] for t in tubes], dtype=np.float64),
            end=np.array([t[-1, 0] for t in tubes], dtype=np.float64),
            offset=np.cumsum(lengths) - lengths,
            is_f32=is_f32,
            boxes=boxes,
            area=area,
        )


@dataclass
class _PairIoU:
    """IoUs of P (GT tube, detected tube) pairs.

    ``st``/``temporal``/``spatial`` hold the official values as float64
    (float32 values exactly upcast); ``*_f32`` tell which were float32
    scalars officially; ``overlap`` is False where the official code
    returns the Python float 0.0.
    """

    st: np.ndarray
    st_f32: np.ndarray
    temporal: np.ndarray
    temporal_f32: np.ndarray
    spatial: np.ndarray
    overlap: np.ndarray


def _pair_iou(gt: TubeRows, det: TubeRows, g: np.ndarray, d: np.ndarray) -> _PairIoU:
    """Spatio-temporal IoU of the pairs ``(g[i], d[i])`` (official ``iou3dt_voc(gt, det)``)."""
    num = g.size
    st = np.zeros(num)
    temporal = np.zeros(num)
    spatial = np.zeros(num)
    gs, ge, ds, de = gt.start[g], gt.end[g], det.start[d], det.end[d]
    tmin, tmax = np.maximum(gs, ds), np.minimum(ge, de)
    overlap = tmax >= tmin
    g32, d32 = gt.is_f32[g], det.is_f32[d]
    # Python max(gt, det)/min(gt, det) return the detection's scalar only when it wins strictly;
    # the temporal ratio is float32 only when all four frame scalars came from float32 tubes.
    ratio_f32 = (
        np.where(ds > gs, d32, g32)
        & np.where(de < ge, d32, g32)
        & np.where(de > ge, d32, g32)
        & np.where(ds < gs, d32, g32)
    )
    both_f32 = g32 & d32
    idx = np.flatnonzero(overlap)
    if idx.size:
        inter_t = tmax[idx] - tmin[idx]
        union_t = np.maximum(ge[idx], de[idx]) - np.minimum(gs[idx], ds[idx])
        with np.errstate(divide='ignore', invalid='ignore'):
            ratio = inter_t / union_t
            ratio32 = (inter_t.astype(np.float32) / union_t.astype(np.float32)).astype(np.float64)
        ratio = np.where(ratio_f32[idx], ratio32, ratio)
        temporal[idx] = ratio
        counts = (inter_t + 1).astype(np.int64)  # frames shared by each pair
        spatial[idx] = spatial_means(gt, det, g[idx], d[idx], tmin[idx], counts, both_f32[idx])
        with np.errstate(invalid='ignore'):
            st64 = spatial[idx] * ratio
            st32 = (spatial[idx].astype(np.float32) * ratio.astype(np.float32)).astype(np.float64)
        st[idx] = np.where(both_f32[idx], st32, st64)
    return _PairIoU(
        st=st,
        st_f32=overlap & both_f32,
        temporal=temporal,
        temporal_f32=overlap & ratio_f32,
        spatial=spatial,
        overlap=overlap,
    )


def spatial_means(gt, det, g, d, tmin, counts, both_f32) -> np.ndarray:
    """Mean per-frame IoU over the shared frames of each pair, in the pair's dtype."""
    out = np.zeros(g.size)
    total = int(counts.sum())
    pair_of_row = np.repeat(np.arange(g.size), counts)  # (F,)
    within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    g_rows = (gt.offset[g] + (tmin - gt.start[g]).astype(np.int64))[pair_of_row] + within
    d_rows = (det.offset[d] + (tmin - det.start[d]).astype(np.int64))[pair_of_row] + within
    for f32 in (True, False):
        pairs = np.flatnonzero(both_f32 == f32)
        if pairs.size == 0:
            continue
        rows = np.flatnonzero(both_f32[pair_of_row] == f32)
        dtype = np.float32 if f32 else np.float64
        gb = gt.boxes[g_rows[rows]].astype(dtype)
        db = det.boxes[d_rows[rows]].astype(dtype)
        inter = box_intersection(gb, db)
        denominator = gt.area[g_rows[rows]].astype(dtype) + det.area[d_rows[rows]].astype(dtype)
        with np.errstate(divide='ignore', invalid='ignore'):
            iou = inter / (denominator - inter)
        out[pairs] = segment_mean(iou, counts[pairs]).astype(np.float64)
    return out


def _reaches(value: np.ndarray, as_f32: np.ndarray, thr: float) -> np.ndarray:
    """``value >= thr`` compared in float32 where the official value is a float32."""
    with np.errstate(invalid='ignore'):
        f64 = value >= thr
        f32 = value.astype(np.float32) >= np.float32(thr)
    return np.where(as_f32, f32, f64)


class _Candidates:
    """Each detection's candidate GT tubes and its best one."""

    def __init__(self, pairs_det, pairs_gt, iou: _PairIoU, num_det: int):
        self.counts = np.bincount(pairs_det, minlength=num_det)
        has = self.counts > 0
        self.has = has
        self.best_gt = np.full(num_det, -1, dtype=np.int64)
        self.best = np.full(num_det, np.nan)
        self.best_nan = np.zeros(num_det, dtype=bool)
        self.best_f32 = np.zeros(num_det, dtype=bool)
        self.arg = np.full(num_det, -1, dtype=np.int64)
        if pairs_det.size == 0:
            return
        counts = self.counts[has]
        arg, is_nan = segment_argmax(iou.st, counts)
        self.best_gt[has] = pairs_gt[arg]
        self.best[has] = iou.st[arg]
        self.best_nan[has] = is_nan
        # The official list of IoUs is float32 only when every entry is a float32 scalar.
        self.best_f32[has] = np.logical_and.reduceat(iou.st_f32, np.cumsum(counts) - counts)
        self.arg[has] = arg

    def reaching(self, thr: float) -> np.ndarray:
        """``(D,)`` whether the best candidate's IoU reaches ``thr``."""
        return self.has & ~self.best_nan & _reaches(self.best, self.best_f32, thr)


def pairs_same_video(gt: GroundTruth, dets: VideoDetections, same_label: bool):
    """All (detection, GT tube) pairs in the same video (and label), detection-major.

    Returns:
        ``(pairs_det, pairs_gt)``: ``(P,)`` indices, GT tubes in official list
        order within a detection (tube order of the label, or label-dict order
        of the video for all labels).
    """
    if same_label:
        gkey = gt.tube_video * gt.num_labels + gt.tube_label
        dkey = dets.video * gt.num_labels + dets.label
        order = np.lexsort((np.arange(gkey.size), gkey))
    else:
        gkey = gt.tube_video
        dkey = dets.video
        order = np.lexsort((gt.tube_rank, gkey))
    sorted_keys = gkey[order]
    lo = np.searchsorted(sorted_keys, dkey, 'left')
    counts = np.searchsorted(sorted_keys, dkey, 'right') - lo
    total = int(counts.sum())
    pairs_det = np.repeat(np.arange(dkey.size), counts)
    within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    pairs_gt = order[lo[pairs_det] + within]
    return pairs_det, pairs_gt


class VideoAPEvaluator:
    """video-mAP at any number of thresholds from one ST-IoU computation.

    Args:
        gt: GT path, dict or :class:`GroundTruth`.
        detections: ``{label: [(video_name, tube_score, tube), ...]}`` or a pickle path.
        progress: show progress bars.
        tie_order: ``'official'``: tied tube scores rank by the official
            ``np.argsort(-scores)`` (as the official tool under the same numpy
            build); ``'stable'``: ties in list order, the same on every machine.
    """

    def __init__(
        self,
        gt: Union[str, Mapping, GroundTruth],
        detections: Union[str, Mapping],
        progress: bool = False,
        tie_order: str = 'official',
    ):
        check_tie_order(tie_order)
        self.gt = load_ground_truth(gt)
        detections, self.source = load_detections(detections, 'video detections')
        self.dets = check_video_detections(detections, self.gt, self.source)
        if self.dets.label.size == 0:
            warnings.warn(
                f'{self.source}: no video detections; every class scores AP 0', stacklevel=2
            )
        self.progress = progress
        self._gt_tubes = TubeRows.from_list(self.gt.tubes)
        self._det_tubes = TubeRows.from_list(self.dets.tubes)
        pairs_det, pairs_gt = pairs_same_video(self.gt, self.dets, same_label=True)
        iou = _pair_iou(self._gt_tubes, self._det_tubes, pairs_gt, pairs_det)
        self._cand = _Candidates(pairs_det, pairs_gt, iou, self.dets.label.size)
        self._num_gt = self.gt.num_gt_per_label()
        self._ranked: Dict[int, np.ndarray] = {}
        for label, scores in self.dets.scores_by_label.items():
            ids = np.flatnonzero(self.dets.label == label)  # in list order
            self._ranked[label] = ids[rank_descending(scores, tie_order)] if scores.size else ids

    def evaluated_labels(self) -> List[int]:
        """Labels that count in the mean: evaluated and with GT tubes."""
        return [
            c for c in range(self.gt.num_labels) if self.gt.evaluated[c] and self._num_gt[c] > 0
        ]

    def _class_tp(self, label: int, reaching: np.ndarray) -> np.ndarray:
        ranked = self._ranked.get(label, np.zeros(0, dtype=np.int64))
        match = np.where(reaching[ranked], self._cand.best_gt[ranked], -1)
        is_tp = np.zeros(ranked.size, dtype=bool)
        candidates = np.flatnonzero(match >= 0)
        _, first = np.unique(match[candidates], return_index=True)
        is_tp[candidates[first]] = True
        return is_tp

    def ap(self, iou_thr: float, keep_pr: bool = False) -> APResult:
        """video-mAP at one threshold (official ``videoAP``)."""
        reaching = self._cand.reaching(iou_thr)
        per_class, class_indices, num_gt, num_det, prs, aps = {}, [], {}, {}, {}, []
        for label in self.evaluated_labels():
            name = self.gt.labels[label]
            is_tp = self._class_tp(label, reaching)
            precision, recall = precision_recall(is_tp, int(self._num_gt[label]))
            ap = voc_ap(precision, recall) * PERCENT
            per_class[name] = ap
            aps.append(ap)
            class_indices.append(label)
            num_gt[name] = int(self._num_gt[label])
            num_det[name] = int(is_tp.size)
            if keep_pr:
                prs[name] = (precision, recall)
        return APResult(
            mean_ap=mean_of(aps),
            per_class=per_class,
            class_indices=class_indices,
            num_gt=num_gt,
            num_det=num_det,
            pr=prs if keep_pr else None,
            iou_thr=iou_thr,
        )

    def range_map(self, name: str) -> float:
        """Mean video-mAP over an official range, summed in the official order."""
        thresholds = range_thresholds(name)
        total = 0
        for thr in track(thresholds, f'video-mAP {name}', self.progress):
            total += self.ap(thr).mean_ap
        return total / float(len(thresholds))


def video_ap(
    gt: Union[str, Mapping, GroundTruth],
    detections: Union[str, Mapping],
    iou_thr: float = 0.5,
    keep_pr: bool = False,
    tie_order: str = 'official',
) -> APResult:
    """video-mAP at one ST-IoU threshold, equal to the official ``videoAP``.

    Args:
        gt: GT path, dict or :class:`GroundTruth`.
        detections: ``{label: [(video_name, tube_score, tube), ...]}`` (tube
            ``(L, 6)`` ``[frame, x1, y1, x2, y2, box_score]``) or a pickle path.
            A label absent from the dict has no detections.
        iou_thr: ST-IoU threshold.
        keep_pr: keep precision/recall arrays.
        tie_order: ``'official'`` or ``'stable'`` (see :class:`VideoAPEvaluator`).

    Returns:
        :class:`APResult` in percent.
    """
    return VideoAPEvaluator(gt, detections, tie_order=tie_order).ap(iou_thr, keep_pr)


def video_ap_thresholds(
    gt: Union[str, Mapping, GroundTruth],
    detections: Union[str, Mapping],
    thresholds: Sequence[float],
    tie_order: str = 'official',
) -> Dict[float, APResult]:
    """video-mAP at several thresholds sharing one ST-IoU computation."""
    evaluator = VideoAPEvaluator(gt, detections, tie_order=tie_order)
    return {thr: evaluator.ap(thr) for thr in thresholds}


def video_ap_all(
    gt: Union[str, Mapping, GroundTruth],
    detections: Union[str, Mapping],
    progress: bool = False,
    tie_order: str = 'official',
) -> Dict[str, float]:
    """The official ``videoAP_all``: mean video-mAP over 0.05:0.45, 0.10:0.90 and 0.50:0.95.

    Returns:
        ``{'0.05:0.45': ..., '0.10:0.90': ..., '0.50:0.95': ...}`` in percent.
    """
    evaluator = VideoAPEvaluator(gt, detections, progress=progress, tie_order=tie_order)
    return {name: evaluator.range_map(name) for name in VIDEO_IOU_RANGES}


def video_ap_error(
    gt: Union[str, Mapping, GroundTruth],
    detections: Union[str, Mapping],
    iou_thr: float = 0.5,
    progress: bool = False,
    tie_order: str = 'official',
) -> Dict[str, Dict]:
    """The official ``videoAP_error`` breakdown of false positives.

    Every false positive gets the first cause that applies: repeated
    detection (ER), wrong class with ST-IoU >= thr (EC), otherwise against
    the GT tube of highest ST-IoU of any class, with ``th = sqrt(thr)``:
    localisation (EL), timing (ET), both (ETL), and with a wrong class
    ECL / ECT / ECTL; no overlap at all: extra detection (EN). Each cause's
    running rate replaces precision in a VOC AP; EM is ``100 - 100 * recall``.

    Classes: every evaluated class (as officially, classes without GT count
    with AP 0 and EM 100; where the official tool divides by zero for a
    class with detections but no GT, recall is taken as 0). Where the
    official tool would fail on a NaN IoU, the detection counts as EN.

    ``tie_order`` ranks tied tube scores as in :class:`VideoAPEvaluator`.

    Returns:
        ``{'per_class': {name: {column: value}}, 'mean': {column: value}}``
        with the columns of :data:`ERROR_COLUMNS`, in percent.
    """
    evaluator = VideoAPEvaluator(gt, detections, progress=progress, tie_order=tie_order)
    gt_data, dets = evaluator.gt, evaluator.dets
    num_det = dets.label.size
    same = evaluator._cand
    reaching_same = same.reaching(iou_thr)
    th = math.sqrt(iou_thr)
    # Pairs with every GT tube of the video, in the official all-GT order.
    pairs_det, pairs_gt = pairs_same_video(gt_data, dets, same_label=False)
    iou = _pair_iou(evaluator._gt_tubes, evaluator._det_tubes, pairs_gt, pairs_det)
    other = gt_data.tube_label[pairs_gt] != dets.label[pairs_det]
    o_det, o_gt = pairs_det[other], pairs_gt[other]
    o_iou = _PairIoU(*(getattr(iou, f)[other] for f in _PairIoU.__dataclass_fields__))
    other_cand = _Candidates(o_det, o_gt, o_iou, num_det)
    reaching_other = other_cand.reaching(iou_thr)
    all_cand = _Candidates(pairs_det, pairs_gt, iou, num_det)
    cause = np.full(num_det, '', dtype='<U4')
    cause[~reaching_same & reaching_other] = 'EC'
    rest = ~reaching_same & ~reaching_other
    with np.errstate(invalid='ignore'):
        touching = rest & all_cand.has & ~all_cand.best_nan & (all_cand.best > 0)
    cause[rest & ~touching] = 'EN'
    arg = all_cand.arg[touching]
    t_ok = _reaches(iou.temporal[arg], iou.temporal_f32[arg], th)
    s_ok = _reaches(iou.spatial[arg], iou.st_f32[arg], th)
    same_label = gt_data.tube_label[pairs_gt[arg]] == dets.label[touching]
    kinds = np.where(
        same_label,
        np.where(t_ok, 'EL', np.where(s_ok, 'ET', 'ETL')),
        np.where(t_ok, 'ECL', np.where(s_ok, 'ECT', 'ECTL')),
    )
    cause[np.flatnonzero(touching)] = kinds
    rows = {}
    for label in track(range(gt_data.num_labels), 'error analysis', progress):
        if not gt_data.evaluated[label]:
            continue
        name = gt_data.labels[label]
        ranked = evaluator._ranked.get(label, np.zeros(0, dtype=np.int64))
        is_tp = evaluator._class_tp(label, reaching_same)
        det_cause = cause[ranked].copy()
        det_cause[reaching_same[ranked] & ~is_tp] = 'ER'
        det_cause[is_tp] = ''
        n = ranked.size
        ranks = np.arange(1, n + 1, dtype=np.float64)
        gt_num = int(evaluator._num_gt[label])
        table = np.zeros((n, len(ERROR_COLUMNS)), dtype=np.float32)  # official float32 columns
        tp = np.cumsum(is_tp).astype(np.float64)
        table[:, 0] = np.maximum(tp / ranks, 0.0)
        table[:, 1] = np.maximum(tp / float(gt_num), 0.0) if gt_num else 0.0
        for j, column in enumerate(ERROR_COLUMNS[1:-1]):
            count = np.cumsum(det_cause == column).astype(np.float64)
            table[:, j + 2] = np.maximum(count / ranks, 0.0)
        values = {'AP': PERCENT * voc_ap(table[:, 0], table[:, 1])}
        for j, column in enumerate(ERROR_COLUMNS[1:-1]):
            values[column] = PERCENT * voc_ap(table[:, j + 2], table[:, 1])
        values['EM'] = 100 - 100 * table[-1, 1] if n else 100
        rows[name] = values
    mean = {}
    for column in ERROR_COLUMNS:
        mean[column] = float(np.mean(np.array([rows[name][column] for name in rows])))
    per_class = {name: {k: float(v) for k, v in row.items()} for name, row in rows.items()}
    return dict(per_class=per_class, mean=mean, iou_thr=iou_thr)
