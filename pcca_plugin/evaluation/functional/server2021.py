"""The 2021 MultiSports challenge server's scorer, vectorised.

The DeeperAction 2021 MultiSports track, the PCCA paper's test figures and
every entry they were compared with were scored by the original
``evaluate.py`` of the MultiSports release (MCG-NJU/MultiSports, added in
commit 9be6a4b, deleted on 2022-01-04 in aa1dcfd), derived from the ACT
detector's evaluation (Kalogeiton et al., ICCV 2017). ``docs/protocol.md``
("The 2021 challenge server") describes it; it differs from today's
protocol (:mod:`.frame_ap`, :mod:`.video_ap`) in five ways, all reproduced
here:

* **geometry with a pixel added**: box areas are ``(x2 - x1 + 1) * (y2 - y1 + 1)``
  and overlaps ``min(x2a + 1, x2b + 1) - max(x1a, x1b)`` (frame and tube IoUs);
  the temporal IoU counts frames, ``(last - first + 1) / (union_end -
  union_start + 1)``;
* **matching removes the matched ground truth**: a detection takes the best of
  the GT boxes (tubes) *not yet matched*, so a detection whose best one was
  taken may still match the next best (today's protocol counts it a false
  positive);
* **ACT's AP**: the area under the precision-recall curve by trapezoids from
  the point (recall 0, precision 1), with no interpolation, in float32
  (:func:`act_ap`);
* **float32 means**: every mAP is the float32 mean of float32 APs;
* **numpy 1.x arithmetic** (the server ran numpy 1.x): a float32 IoU is
  compared with a threshold in float64, the temporal IoU is float64, and the
  means over a threshold range are summed in float64 (``ap = 0; ap +=
  float32``), where numpy 2 (NEP 50) would stay in float32.

It reports six figures, in percent (:data:`SERVER2021_FIGURES`). The six
classes the challenge skips are skipped, as today.

Vectorisation. The IoUs of every (detection, GT) pair that can meet are
computed once, all pairs together (the ST-IoUs once for the 28 video
thresholds). Removal matching is sequential in the original; here it runs in
rounds over the pairs that reach the threshold (:func:`match_with_removal`):
each round every unresolved detection proposes its best remaining GT, and
all proposals ranked before the first clash of their frame (video) are
final. The rounds are at most the number of GT boxes of one frame plus one.

Shape shorthand: D detections of a class, P (detection, GT) pairs, G GT boxes.
"""

import warnings
from typing import Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from .ap import check_tie_order, precision_recall, rank_descending
from .frame_ap import FRAME_IOU_THR, GTBoxRows
from .geometry import box_area, box_intersection, exclusive_corners, segment_argmax
from .ground_truth import (
    GroundTruth,
    check_frame_detections,
    check_video_detections,
    load_detections,
    load_frame_detections,
    load_ground_truth,
)
from .progress import track
from .video_ap import TubeRows, pairs_same_video, range_thresholds, spatial_means

#: The six figures of the 2021 server, in the order it wrote them to ``scores.txt``.
SERVER2021_FIGURES = ('F@0.5', 'V@0.2', 'V@0.5', 'V@0.05:0.45', 'V@0.5:0.95', 'V@0.1:0.9')
#: The single video-mAP thresholds of the 2021 server.
SERVER2021_VIDEO_THRS = {'V@0.2': 0.2, 'V@0.5': 0.5}
#: The threshold ranges of the 2021 server -> the matching :data:`VIDEO_IOU_RANGES` key
#: (the same thresholds, ``first + step * i`` in that order).
SERVER2021_RANGES = {
    'V@0.05:0.45': '0.05:0.45',
    'V@0.5:0.95': '0.50:0.95',
    'V@0.1:0.9': '0.10:0.90',
}
#: The paper's Table 1 columns among the six figures.
PAPER_TABLE_FIGURES = ('F@0.5', 'V@0.2', 'V@0.5', 'V@0.1:0.9')
#: Figures are reported in percent; multiplied into a float32 array as the server did.
PERCENT = 100
#: Where ACT's precision-recall curve starts: recall 0, precision 1.
CURVE_START_PRECISION = 1.0
CURVE_START_RECALL = 0.0
#: The trapezoid rule's one half.
HALF = 0.5


def act_ap(precision: np.ndarray, recall: np.ndarray) -> np.float32:
    """ACT's AP: trapezoids under the float32 precision-recall curve from (0, 1).

    The curve is the point (recall 0, precision 1) followed by the running
    precision and recall after each ranked detection, each stored in float32;
    the AP is ``sum((r[i] - r[i-1]) * (p[i] + p[i-1]) * 0.5)`` summed in
    float32 (numpy's pairwise sum of the whole array, as ``np.sum`` does).

    Args:
        precision: ``(D,)`` running precision (float64, rounded to float32 here).
        recall: ``(D,)`` running recall.

    Returns:
        The AP in ``[0, 1]`` as a float32 scalar (0 when ``D == 0``).
    """
    curve_p = np.empty(precision.size + 1, dtype=np.float32)  # (D + 1,)
    curve_r = np.empty(recall.size + 1, dtype=np.float32)
    curve_p[0], curve_r[0] = CURVE_START_PRECISION, CURVE_START_RECALL
    curve_p[1:], curve_r[1:] = precision, recall
    return np.sum((curve_r[1:] - curve_r[:-1]) * (curve_p[1:] + curve_p[:-1]) * HALF)


def float32_map(aps: List[np.float32], what: str) -> float:
    """The server's mean of per-class APs: ``np.mean(100 * float32 array)``, a float32.

    No evaluated class gives NaN, as the server's ``np.mean`` of nothing did (with a warning).
    """
    if not aps:
        warnings.warn(f'{what}: no evaluated class has ground truth; the mAP is NaN', stacklevel=3)
        return float('nan')
    return float(np.mean(PERCENT * np.array(aps, dtype=np.float32)))


def match_with_removal(
    det_key: np.ndarray, pair_det: np.ndarray, pair_gt: np.ndarray, pair_iou: np.ndarray, thr: float
) -> np.ndarray:
    """True positives of ranked detections that each take their best remaining GT.

    The sequential rule: walking the detections in rank order, a detection
    takes the GT of its key (frame or video) with the highest IoU among those
    not taken yet (``np.argmax``: the first maximum, or the first NaN, which
    never matches); it is a true positive when that IoU reaches ``thr``, and
    the GT is then taken.

    Only pairs with IoU ``>= thr`` (or NaN) can change the outcome, so only
    they are kept. Each round, every unresolved detection proposes its best
    remaining pair; per key, the proposals ranked before the first one that
    repeats an earlier proposal's GT are exactly what the sequential walk
    does (a GT taken by none of them stays the best remaining one), so they
    are final; the rest wait for the next round.

    Args:
        det_key: ``(D,)`` int64 key of each detection, in rank order.
        pair_det: ``(P,)`` rank of the detection of each pair, sorted, with
            each detection's pairs in GT order (the order ``np.argmax`` sees).
        pair_gt: ``(P,)`` int64 GT of each pair (GT ids unique across keys).
        pair_iou: ``(P,)`` float64 IoUs (float32 values compared in float64,
            as numpy 1.x compares a float32 scalar with a Python float).
        thr: the IoU threshold.

    Returns:
        ``(D,)`` bool, true positives in rank order.
    """
    num_det = det_key.size
    is_tp = np.zeros(num_det, dtype=bool)
    with np.errstate(invalid='ignore'):
        usable = (pair_iou >= thr) | np.isnan(pair_iou)
    pair_det, pair_gt, pair_iou = pair_det[usable], pair_gt[usable], pair_iou[usable]
    if pair_det.size == 0:
        return is_tp
    taken = np.zeros(int(pair_gt.max()) + 1, dtype=bool)
    keys, det_key_index = np.unique(det_key, return_inverse=True)
    while pair_det.size:
        alive = ~taken[pair_gt]
        pair_det, pair_gt, pair_iou = pair_det[alive], pair_gt[alive], pair_iou[alive]
        if pair_det.size == 0:
            break
        dets, starts, counts = np.unique(pair_det, return_index=True, return_counts=True)
        arg, is_nan = segment_argmax(pair_iou, counts)
        proposal = np.where(is_nan, -1, pair_gt[arg])  # (U,) the GT each would take, -1: none
        proposing = np.flatnonzero(proposal >= 0)
        _, first = np.unique(proposal[proposing], return_index=True)
        clash = np.ones(dets.size, dtype=bool)
        clash[proposal < 0] = False
        clash[proposing[first]] = False  # the best-ranked proposal of each GT is no clash
        first_clash = np.full(keys.size, num_det, dtype=np.int64)
        np.minimum.at(first_clash, det_key_index[dets[clash]], dets[clash])
        final = dets < first_clash[det_key_index[dets]]
        wins = final & (proposal >= 0)
        is_tp[dets[wins]] = True
        taken[proposal[wins]] = True
        unresolved = np.zeros(num_det, dtype=bool)
        unresolved[dets[~final]] = True
        keep = unresolved[pair_det]
        pair_det, pair_gt, pair_iou = pair_det[keep], pair_gt[keep], pair_iou[keep]
    return is_tp


def _frame_pairs(array, rows, det_keys, gt_keys, gt_boxes, gt_area, table_size, thr):
    """Pairs (detection, GT box) of the same key whose +1 IoU reaches ``thr`` or is NaN.

    Args:
        array: ``(M, 8)`` all frame detections (their dtype is the +1's dtype).
        rows: ``(M_c,)`` rows of this class's detections.
        det_keys: ``(M_c,)`` int64 (video, frame) keys.
        gt_keys: ``(G,)`` sorted keys of the GT boxes (GT order within a key).
        gt_boxes: ``(G, 4)`` float64 GT boxes with :func:`exclusive_corners`.
        gt_area: ``(G,)`` float64 +1 areas of the GT boxes.
        table_size: number of possible keys.
        thr: the IoU threshold.

    Returns:
        ``(det, gt, iou)``: ``(P,)`` index into ``rows``, index into the GT
        boxes, float64 IoU; sorted by detection, then GT.
    """
    count_table = np.bincount(gt_keys, minlength=table_size)
    start_table = np.cumsum(count_table) - count_table
    counts = count_table[det_keys]  # (M_c,)
    at_gt = np.flatnonzero(counts)
    found_det, found_gt, found_iou = [], [], []
    if at_gt.size:
        counts = counts[at_gt]
        starts = start_table[det_keys[at_gt]]
        det_boxes = array[rows[at_gt], 4:8]  # (A, 4) input dtype
        # The pixel and the area in the detections' own dtype, as the server computed them.
        det_area = box_area(det_boxes, plus_one=True).astype(np.float64)
        det_boxes = exclusive_corners(det_boxes).astype(np.float64)
        for slot in range(int(counts.max())):
            idx = np.flatnonzero(counts > slot)
            gt_rows = starts[idx] + slot
            inter = box_intersection(gt_boxes[gt_rows], det_boxes[idx])
            with np.errstate(divide='ignore', invalid='ignore'):
                iou = inter / (gt_area[gt_rows] + det_area[idx] - inter)
                hit = (iou >= thr) | np.isnan(iou)
            found_det.append(at_gt[idx[hit]])
            found_gt.append(gt_rows[hit])
            found_iou.append(iou[hit])
    if not found_det:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    det, gt, iou = np.concatenate(found_det), np.concatenate(found_gt), np.concatenate(found_iou)
    order = np.lexsort((gt, det))
    return det[order], gt[order], iou[order]


def server2021_frame_map(
    gt: Union[str, Mapping, GroundTruth],
    detections: Union[str, np.ndarray],
    iou_thr: float = FRAME_IOU_THR,
    tie_order: str = 'official',
    per_class: Optional[Dict[str, float]] = None,
    source: Optional[str] = None,
) -> float:
    """frame-mAP (percent) as the 2021 server computed it.

    Args:
        gt: GT path, dict or :class:`GroundTruth`.
        detections: ``(M, 8)`` array ``[video_index, frame, label, score, x1,
            y1, x2, y2]`` or a pickle path.
        iou_thr: the IoU threshold (0.5 on the server).
        tie_order: ``'official'`` (``np.argsort(-scores)``, the server's call) or ``'stable'``.
        per_class: filled with class name -> AP (percent) when given.
        source: names the detections in messages (default: the path, or
            ``<frame detections>``).

    Returns:
        The float32 mAP as a Python float (NaN when no class has GT).
    """
    check_tie_order(tie_order)
    gt = load_ground_truth(gt)
    detections, loaded_from = load_frame_detections(detections)
    source = source or loaded_from
    dets = check_frame_detections(detections, gt, source)
    if dets.array.shape[0] == 0:
        warnings.warn(f'{source}: no frame detections; every class scores AP 0', stacklevel=2)
    stride = int(gt.nframes.max()) + 1
    num_boxes = gt.num_boxes_per_label()
    gt_rows = GTBoxRows(gt)
    aps = []
    for label in range(gt.num_labels):
        if not gt.evaluated[label] or num_boxes[label] == 0:
            continue
        # One class's rows at a time (input order): no (M,) index array beside the detections.
        rows = np.flatnonzero(dets.label == label)
        order = rank_descending(dets.array[rows, 3], tie_order)  # (D,) rank -> row of `rows`
        gt_keys, gt_boxes = gt_rows.of_label(label, stride)
        det_keys = dets.video[rows].astype(np.int64) * stride + dets.frame[rows]  # (D,)
        pair_det, pair_gt, pair_iou = _frame_pairs(
            dets.array,
            rows,
            det_keys,
            gt_keys,
            exclusive_corners(gt_boxes),
            box_area(gt_boxes, plus_one=True),
            gt.num_videos * stride,
            iou_thr,
        )
        rank_of = np.empty(order.size, dtype=np.int64)
        rank_of[order] = np.arange(order.size)
        pair_rank = rank_of[pair_det]
        resort = np.lexsort((pair_gt, pair_rank))
        is_tp = match_with_removal(
            det_keys[order], pair_rank[resort], pair_gt[resort], pair_iou[resort], iou_thr
        )
        ap = act_ap(*precision_recall(is_tp, int(num_boxes[label])))
        aps.append(ap)
        if per_class is not None:
            per_class[gt.labels[label]] = float(PERCENT * ap)
    return float32_map(aps, 'frame-mAP')


def _pair_st_iou(gt_tubes: TubeRows, det_tubes: TubeRows, g, d) -> np.ndarray:
    """The 2021 server's ST-IoU of the pairs ``(g[i], d[i])`` (+1 geometry), float64.

    Temporal IoU ``(last - first + 1) / (union_end - union_start + 1)``: under
    numpy 1.x the ``+ 1`` makes it float64 whatever the tubes' dtype. The
    spatial IoU is the mean per-frame +1 IoU in the pair's dtype (float32
    for two float32 tubes); their product is float64.
    """
    st = np.zeros(g.size)
    gs, ge, ds, de = gt_tubes.start[g], gt_tubes.end[g], det_tubes.start[d], det_tubes.end[d]
    first, last = np.maximum(gs, ds), np.minimum(ge, de)
    idx = np.flatnonzero(last >= first)
    if idx.size:
        inter_t = last[idx] - first[idx] + 1
        union_t = np.maximum(ge[idx], de[idx]) - np.minimum(gs[idx], ds[idx]) + 1
        counts = inter_t.astype(np.int64)  # frames shared by each pair
        both_f32 = gt_tubes.is_f32[g[idx]] & det_tubes.is_f32[d[idx]]
        spatial = spatial_means(gt_tubes, det_tubes, g[idx], d[idx], first[idx], counts, both_f32)
        with np.errstate(invalid='ignore'):
            st[idx] = spatial * (inter_t / union_t)
    return st


def _check_every_label_listed(detections, gt: GroundTruth, source: str) -> None:
    """The server read ``alldets[label]`` for every class it scores: a missing key crashed it.

    Raises:
        ValueError: naming the missing labels and the fix (an empty list).
    """
    if not isinstance(detections, Mapping):
        return  # check_video_detections names the type
    missing = [c for c in range(gt.num_labels) if gt.evaluated[c] and c not in detections]
    if missing:
        names = ', '.join(f'{c} ({gt.labels[c]!r})' for c in missing[:5])
        more = f' and {len(missing) - 5} more' if len(missing) > 5 else ''
        raise ValueError(
            f'{source}: no entry for label {names}{more}; the 2021 server read the list of every '
            'class it scores and failed on a missing one. Give each such label an empty list '
            '(link_tubes and the archive tools write every label)'
        )


class Server2021VideoScorer:
    """video-mAP at any threshold as the 2021 server computed it, from one ST-IoU pass.

    Args:
        gt: GT path, dict or :class:`GroundTruth`.
        detections: ``{label: [(video_name, tube_score, tube), ...]}`` or a pickle path.
        tie_order: ``'official'`` or ``'stable'`` (as :class:`.VideoAPEvaluator`).
        source: names the detections in messages (default: the path, or
            ``<video detections>``).
        progress: show a progress bar over the thresholds of a range.
    """

    def __init__(
        self,
        gt: Union[str, Mapping, GroundTruth],
        detections: Union[str, Mapping],
        tie_order: str = 'official',
        source: Optional[str] = None,
        progress: bool = False,
    ):
        check_tie_order(tie_order)
        self.progress = progress
        self.gt = load_ground_truth(gt)
        detections, loaded_from = load_detections(detections, 'video detections')
        source = source or loaded_from
        _check_every_label_listed(detections, self.gt, source)
        self.dets = check_video_detections(detections, self.gt, source)
        if self.dets.label.size == 0:
            warnings.warn(f'{source}: no video detections; every class scores AP 0', stacklevel=2)
        pair_det, pair_gt = pairs_same_video(self.gt, self.dets, same_label=True)
        st = _pair_st_iou(
            TubeRows.from_list(self.gt.tubes, plus_one=True),
            TubeRows.from_list(self.dets.tubes, plus_one=True),
            pair_gt,
            pair_det,
        )
        self._num_gt = self.gt.num_gt_per_label()
        #: label -> (det_key in rank order, pair rank, pair GT, pair ST-IoU), pairs rank-sorted.
        self._classes: Dict[int, tuple] = {}
        rank_of = np.zeros(self.dets.label.size, dtype=np.int64)  # detection -> rank in its label
        for label, scores in self.dets.scores_by_label.items():
            ids = np.flatnonzero(self.dets.label == label)  # list order
            rank_of[ids[rank_descending(scores, tie_order)]] = np.arange(ids.size)
        # Pairs grouped by label, then by rank; pairs_same_video lists a detection's GT
        # tubes in the label's tube order, which the stable sorts keep.
        pair_label = self.dets.label[pair_det]
        by_label = np.lexsort((rank_of[pair_det], pair_label))
        label_counts = np.bincount(pair_label, minlength=self.gt.num_labels)
        label_starts = np.cumsum(label_counts) - label_counts
        for label in range(self.gt.num_labels):
            if not self.gt.evaluated[label] or self._num_gt[label] == 0:
                continue
            ids = np.flatnonzero(self.dets.label == label)
            det_video = np.zeros(ids.size, dtype=np.int64)  # video of each rank
            det_video[rank_of[ids]] = self.dets.video[ids]
            mine = by_label[label_starts[label] : label_starts[label] + label_counts[label]]
            self._classes[label] = (
                det_video,
                rank_of[pair_det[mine]],
                pair_gt[mine],
                st[mine],
            )

    def video_map(self, iou_thr: float, per_class: Optional[Dict[str, float]] = None) -> float:
        """video-mAP (percent) at one ST-IoU threshold, a float32 value (NaN: no class with GT)."""
        aps = []
        for label, (det_video, pair_rank, pair_gt, pair_st) in self._classes.items():
            is_tp = match_with_removal(det_video, pair_rank, pair_gt, pair_st, iou_thr)
            ap = act_ap(*precision_recall(is_tp, int(self._num_gt[label])))
            aps.append(ap)
            if per_class is not None:
                per_class[self.gt.labels[label]] = float(PERCENT * ap)
        return float32_map(aps, 'video-mAP')

    def range_map(self, name: str) -> float:
        """Mean video-mAP over a range of :data:`SERVER2021_RANGES`, summed in float64 in order."""
        thresholds = range_thresholds(SERVER2021_RANGES[name])
        total = 0.0  # numpy 1.x: 0 + a float32 scalar is a float64, and so is every sum after
        for thr in track(thresholds, f'server2021 {name}', self.progress):
            total += self.video_map(thr)
        return total / len(thresholds)


def server2021_figures(
    gt: Union[str, Mapping, GroundTruth],
    frame_detections: Union[str, np.ndarray],
    video_detections: Union[str, Mapping],
    tie_order: str = 'official',
    progress: bool = False,
    sources: Tuple[Optional[str], Optional[str]] = (None, None),
) -> Dict[str, float]:
    """The six figures of the 2021 server, in percent, keyed as :data:`SERVER2021_FIGURES`.

    Args:
        gt: GT path, dict or :class:`GroundTruth` (``test_videos[0]`` is scored).
        frame_detections: ``(M, 8)`` frame detections or a pickle path.
        video_detections: ``{label: [(video_name, tube_score, tube)]}`` or a pickle path.
        tie_order: ``'official'`` or ``'stable'`` (``docs/protocol.md``, "Tied scores").
        progress: show a progress bar over the thresholds of each range.
        sources: what to call the frame and the video detections in messages.

    Returns:
        ``{'F@0.5': ..., 'V@0.2': ..., 'V@0.5': ..., 'V@0.05:0.45': ...,
        'V@0.5:0.95': ..., 'V@0.1:0.9': ...}``.
    """
    gt = load_ground_truth(gt)
    frame_map = server2021_frame_map(
        gt, frame_detections, FRAME_IOU_THR, tie_order, source=sources[0]
    )
    scorer = Server2021VideoScorer(gt, video_detections, tie_order, sources[1], progress)
    return _six_figures(frame_map, scorer)


def score_submission(
    gt: Union[str, Mapping, GroundTruth],
    submission,
    tie_order: str = 'official',
    progress: bool = False,
) -> Dict[str, float]:
    """:func:`server2021_figures` of a :class:`~.archive.Submission`, in less memory.

    The frame detections are taken from ``submission``
    (:meth:`~.archive.Submission.take_frame_detections`) and freed once the
    frame-mAP is computed, before the tubes are scored.
    """
    gt = load_ground_truth(gt)
    frame_map = server2021_frame_map(
        gt,
        submission.take_frame_detections(),
        FRAME_IOU_THR,
        tie_order,
        source=submission.frame_source,
    )
    scorer = Server2021VideoScorer(
        gt, submission.video_detections, tie_order, submission.video_source, progress
    )
    return _six_figures(frame_map, scorer)


def _six_figures(frame_map: float, scorer: Server2021VideoScorer) -> Dict[str, float]:
    figures = {'F@0.5': frame_map}
    for name, thr in SERVER2021_VIDEO_THRS.items():
        figures[name] = scorer.video_map(thr)
    for name in SERVER2021_RANGES:
        figures[name] = scorer.range_map(name)
    return {name: figures[name] for name in SERVER2021_FIGURES}
