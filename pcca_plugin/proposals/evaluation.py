"""Person-proposal quality: AP@0.5 and AR@100 against MultiSports ground truth.

These are the two detector columns of the PCCA paper's Table 2 (Sec. 3.3,
"Different Detectors"): the paper evaluates *only on frames that carry action
tube annotations*, because most frames of an untrimmed MultiSports video have
no boxes and every detection there would count as a false positive.

Definitions (all boxes compared with the evaluation IoU of
``docs/protocol.md``: area ``(x2 - x1) * (y2 - y1)``, no +1):

* **Evaluated frames**: every ``(video, frame)`` of the evaluated videos that
  has at least one ground-truth box in some tube (any action class). The
  ground truth of a frame is the set of those boxes; exact duplicates (the
  same person annotated in two tubes) count once.
* **AP@thr** (default thr 0.5): one class, "person". All proposals of the
  evaluated frames are pooled and sorted by score, descending, with
  ``np.argsort(-scores)`` as the official MultiSports tool does. A proposal is
  a true positive when the ground-truth box of its frame with the highest IoU
  has IoU >= thr and has not been matched by a higher-ranked proposal;
  otherwise it is a false positive. AP is the PASCAL VOC all-point area under
  the precision/recall curve (the protocol's "Average precision" section), in
  percent. Proposals of frames outside the evaluated set are ignored.
* **AR@k** (default k 100): the fraction of ground-truth boxes, in percent,
  that at least one of their frame's ``k`` highest-scored proposals overlaps
  with IoU >= thr (best-overlap recall, no one-to-one assignment: one
  proposal may cover two heavily overlapping persons). An evaluated frame
  with no entry in the proposal file has no proposals.

Shape shorthand: ``N`` proposals of a frame, ``G`` ground-truth boxes of a
frame, ``D`` proposals pooled over frames.
"""

from collections import OrderedDict
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence

import numpy as np

from ..evaluation.functional import box_iou, voc_ap
from ..utils.multisports_format import check_gt_keys, frame_key, parse_frame_key
from .ground_truth import PERSON_BOX_GT_KEYS, frame_person_boxes, split_videos, video_resolution

#: IoU a proposal needs with a ground-truth box to match it (paper Table 2: AP@0.5).
DEFAULT_IOU_THR = 0.5
#: Proposals per frame considered for recall (paper Table 2: AR@100).
DEFAULT_MAX_PER_FRAME = 100
#: Columns of a proposal row: x1, y1, x2, y2, score.
PROPOSAL_COLUMNS = 5
#: A coordinate above this cannot be normalised (boxes slightly outside the frame are
#: fine): the proposal file holds pixel boxes.
PIXEL_COORD_MIN = 2.0


def gt_person_boxes(
    gt: Mapping, videos: Sequence[str], source: str = 'GT'
) -> Dict[str, np.ndarray]:
    """Ground-truth person boxes of every annotated frame, normalised to [0, 1].

    Args:
        gt: a MultiSports GT dict (``docs/protocol.md``).
        videos: the videos to take (e.g. ``gt['test_videos'][0]``).
        source: file name for error messages.

    Returns:
        frame key -> np.ndarray[G, 4] float64 ``[x1, y1, x2, y2]`` divided by
        the video's width/height, exact duplicates removed, in frame order per
        video and video order as given.
    """
    boxes: Dict[str, np.ndarray] = OrderedDict()
    for video in videos:
        height, width = video_resolution(gt, video, source)
        scale = np.array([width, height, width, height], dtype=np.float64)
        for frame, frame_boxes in frame_person_boxes(gt, video, source).items():
            boxes[frame_key(video, frame)] = frame_boxes / scale  # (G, 4)
    return boxes


class _FrameRecord(NamedTuple):
    """What one evaluated frame contributes (all arrays over its N proposals)."""

    video: str
    scores: np.ndarray  # (N,) proposal scores
    best_gt: np.ndarray  # (N,) index of the highest-IoU GT box, -1 when below thr
    num_gt: int
    num_recalled: int  # GT boxes covered by the top-k proposals


def _check_proposals(key: str, array: np.ndarray, source: str) -> np.ndarray:
    array = np.asarray(array)
    if array.size == 0:
        return np.zeros((0, PROPOSAL_COLUMNS), dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != PROPOSAL_COLUMNS:
        raise ValueError(
            f'{source}: proposals[{key!r}] has shape {array.shape}; expected (n, 5) rows '
            '[x1, y1, x2, y2, score] with coordinates normalised to [0, 1]'
        )
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f'{source}: proposals[{key!r}] holds NaN or infinite values')
    if array[:, :4].max() > PIXEL_COORD_MIN:
        raise ValueError(
            f'{source}: proposals[{key!r}] has a coordinate of {array[:, :4].max():.4g}; '
            'proposal boxes are divided by the frame width/height (official MultiSports '
            'format), these look like pixels. Normalise them first.'
        )
    return array


def _frame_record(
    video: str, proposals: np.ndarray, gt_boxes: np.ndarray, iou_thr: float, max_per_frame: int
) -> _FrameRecord:
    """Match one frame's proposals (N, 5) against its GT boxes (G, 4)."""
    scores = proposals[:, 4]
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)  # (G, 4)
    iou = box_iou(proposals[:, :4], gt_boxes, empty_union=0.0)  # (N, G), 0 for an empty union
    if len(proposals):
        best_gt = iou.argmax(axis=1)
        best_gt = np.where(iou.max(axis=1) >= iou_thr, best_gt, -1)
        top = np.argsort(-scores, kind='stable')[:max_per_frame]
        num_recalled = int(np.count_nonzero(iou[top].max(axis=0) >= iou_thr))
    else:
        best_gt = np.zeros(0, dtype=np.int64)
        num_recalled = 0
    return _FrameRecord(video, scores, best_gt, len(gt_boxes), num_recalled)


def _summarise(records: Sequence[_FrameRecord]) -> Dict[str, float]:
    """AP and AR (percent) of a set of frame records, plus counts."""
    num_gt = sum(r.num_gt for r in records)
    num_recalled = sum(r.num_recalled for r in records)
    offsets = np.cumsum([0] + [r.num_gt for r in records[:-1]]).astype(np.int64)
    scores = np.concatenate([r.scores for r in records]) if records else np.zeros(0)
    # Global GT ids: a frame's local GT index plus the number of GT boxes before it.
    global_gt = (
        np.concatenate(
            [
                np.where(r.best_gt >= 0, r.best_gt + offset, -1)
                for r, offset in zip(records, offsets)
            ]
        )
        if records
        else np.zeros(0, dtype=np.int64)
    )
    order = np.argsort(-scores)
    ranked_gt = global_gt[order]  # (D,)
    true_positive = np.zeros(len(ranked_gt), dtype=bool)
    candidates = np.nonzero(ranked_gt >= 0)[0]
    # The first (highest-ranked) proposal pointing at a GT box matches it; later
    # ones pointing at the same box are duplicates, i.e. false positives.
    _, first = np.unique(ranked_gt[candidates], return_index=True)
    true_positive[candidates[first]] = True
    if num_gt == 0:
        ap = float('nan')
        ar = float('nan')
    else:
        tp_cum = np.cumsum(true_positive)
        recall = tp_cum / num_gt
        precision = tp_cum / np.arange(1, len(tp_cum) + 1)
        ap = 100.0 * voc_ap(precision, recall) if len(tp_cum) else 0.0
        ar = 100.0 * num_recalled / num_gt
    return {
        'AP': ap,
        'AR': ar,
        'num_frames': len(records),
        'num_gt_boxes': int(num_gt),
        'num_proposals': len(scores),
        'num_true_positives': int(true_positive.sum()),
        'num_recalled_gt_boxes': int(num_recalled),
    }


def evaluate_proposals(
    proposals: Mapping[str, np.ndarray],
    gt_boxes: Mapping[str, np.ndarray],
    iou_thr: float = DEFAULT_IOU_THR,
    max_per_frame: int = DEFAULT_MAX_PER_FRAME,
    source: str = 'proposals',
) -> Dict:
    """AP@``iou_thr`` and AR@``max_per_frame`` of person proposals, overall and per video.

    Args:
        proposals: frame key -> np.ndarray[N, 5] ``[x1, y1, x2, y2, score]``
            normalised (the official MultiSports person-box format).
        gt_boxes: frame key -> np.ndarray[G, 4] normalised, as returned by
            :func:`gt_person_boxes`; its keys are the evaluated frames.
        iou_thr: IoU for a match.
        max_per_frame: proposals per frame (highest scores) used for recall.
        source: file name for error messages.

    Returns:
        ``{'overall': stats, 'per_video': {video: stats}, 'settings': {...}}``
        where stats holds ``AP`` and ``AR`` in percent (NaN without GT boxes),
        ``num_frames``, ``num_gt_boxes``, ``num_proposals``,
        ``num_true_positives``, ``num_recalled_gt_boxes``, and for the overall
        entry ``frames_without_proposals`` (evaluated frames missing from the
        proposal file).
    """
    if not 0.0 < iou_thr <= 1.0:
        raise ValueError(f'iou_thr must be in (0, 1], got {iou_thr}')
    if max_per_frame < 1:
        raise ValueError(f'max_per_frame must be >= 1, got {max_per_frame}')
    records: List[_FrameRecord] = []
    missing = 0
    for key, frame_gt in gt_boxes.items():
        video, _ = parse_frame_key(key)
        if key in proposals:
            frame_props = _check_proposals(key, proposals[key], source)
        else:
            missing += 1
            frame_props = np.zeros((0, PROPOSAL_COLUMNS), dtype=np.float64)
        records.append(
            _frame_record(video, frame_props, np.asarray(frame_gt), iou_thr, max_per_frame)
        )
    per_video_records: Dict[str, List[_FrameRecord]] = OrderedDict()
    for record in records:
        per_video_records.setdefault(record.video, []).append(record)
    overall = _summarise(records)
    overall['frames_without_proposals'] = missing
    return {
        'overall': overall,
        'per_video': {video: _summarise(recs) for video, recs in per_video_records.items()},
        'settings': {'iou_thr': iou_thr, 'max_per_frame': max_per_frame},
    }


def evaluate_proposal_file_contents(
    proposals: Mapping[str, np.ndarray],
    gt: Mapping,
    split: str = 'test',
    videos: Optional[Sequence[str]] = None,
    iou_thr: float = DEFAULT_IOU_THR,
    max_per_frame: int = DEFAULT_MAX_PER_FRAME,
    gt_source: str = 'GT',
    proposal_source: str = 'proposals',
) -> Dict:
    """Evaluate a loaded proposal dict against a loaded MultiSports GT dict.

    Args:
        proposals: the proposal dict (frame key -> (N, 5)).
        gt: the GT dict.
        split: ``'test'`` (``gt['test_videos'][0]``, the validation split of
            MultiSports) or ``'train'``; ignored when ``videos`` is given.
        videos: evaluate only these videos.
        iou_thr, max_per_frame: see :func:`evaluate_proposals`.
        gt_source, proposal_source: file names for error messages.
    """
    check_gt_keys(gt, gt_source, PERSON_BOX_GT_KEYS, 'proposal evaluation')
    if not isinstance(proposals, Mapping):
        raise TypeError(
            f'{proposal_source}: a proposal file holds a dict frame key -> (n, 5) '
            f'array, found {type(proposals).__name__}'
        )
    if videos is None:
        videos = split_videos(gt, split, gt_source)
    boxes = gt_person_boxes(gt, videos, source=gt_source)
    return evaluate_proposals(
        proposals, boxes, iou_thr=iou_thr, max_per_frame=max_per_frame, source=proposal_source
    )
