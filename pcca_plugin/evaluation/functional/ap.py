"""PASCAL VOC average precision (all points) and the result container.

Source: ``docs/protocol.md`` ("Average precision"), the all-point
interpolated AP of PASCAL VOC 2010+ (Everingham et al., IJCV 2010).

Tie order. The official tool ranks with numpy's default ``np.argsort``, which
is not stable: how tied scores come out depends on the numpy version and on
the CPU (numpy 2 dispatches to SIMD sorts by instruction set), so the
official figures of a case with tied scores are reproducible only under the
same numpy build. ``tie_order='official'`` (the default everywhere) makes the
very call of the official tool; ``tie_order='stable'`` sorts stably, ties in
input order, which gives the same figures on every machine. See
``docs/protocol.md`` ("Tied scores").
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

#: Figures are reported in percent.
PERCENT = 100.0
#: ``'official'``: numpy's default argsort, as the official tool; ``'stable'``: input order.
TIE_ORDERS = ('official', 'stable')


def check_tie_order(tie_order: str) -> str:
    """Return ``tie_order`` or raise a ValueError that lists the choices."""
    if tie_order not in TIE_ORDERS:
        raise ValueError(
            f'tie_order must be one of {TIE_ORDERS} (official: rank ties as the official tool '
            f'under this numpy build; stable: ties in input order), got {tie_order!r}'
        )
    return tie_order


def rank_descending(scores: np.ndarray, tie_order: str = 'official', axis: int = -1) -> np.ndarray:
    """Indices that rank ``scores`` best first, with the chosen tie order.

    Args:
        scores: ``(..., D)`` scores.
        tie_order: ``'official'``: ``np.argsort(-scores)``, the official
            call (tie order of numpy's default sort, which depends on the
            numpy build); ``'stable'``: ties keep their input order.
        axis: the axis to sort along.

    Returns:
        ``(..., D)`` int64 indices along ``axis``.
    """
    if tie_order == 'stable':
        return np.argsort(-scores, axis=axis, kind='stable')
    return np.argsort(-scores, axis=axis)


def rank_descending_reversed(
    scores: np.ndarray, tie_order: str = 'official', axis: int = -1
) -> np.ndarray:
    """Like :func:`rank_descending` for the calls written ``np.argsort(scores)[::-1]``.

    The official tubelet suppression reverses an ascending sort; its ties
    therefore come out in the reverse of numpy's order. ``'stable'`` ranks
    best first with ties in input order, the same as :func:`rank_descending`.

    Args:
        scores: ``(..., D)`` scores.
        tie_order: ``'official'`` or ``'stable'``.
        axis: the last axis (-1) is the only one supported.

    Returns:
        ``(..., D)`` int64 indices.
    """
    if axis != -1:
        raise ValueError('rank_descending_reversed sorts along the last axis')
    if tie_order == 'stable':
        return np.argsort(-scores, axis=-1, kind='stable')
    return np.argsort(scores, axis=-1)[..., ::-1]


def voc_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """All-point VOC AP from the running precision/recall of ranked detections.

    Prepends recall 0 / precision 0, appends recall 1 / precision 0, makes
    precision non-increasing from the right and sums ``(r[i] - r[i-1]) * p[i]``
    where recall changes.

    Args:
        precision: ``(D,)`` precision after each of the D ranked detections.
        recall: ``(D,)`` recall after each detection.

    Returns:
        AP in ``[0, 1]`` (0 when ``D == 0``).
    """
    recall = np.concatenate([[0], recall, [1]])
    precision = np.concatenate([[0], precision, [0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    changed = np.where(recall[1:] != recall[:-1])[0] + 1
    return float(np.sum((recall[changed] - recall[changed - 1]) * precision[changed]))


def precision_recall(is_tp: np.ndarray, num_gt: int) -> Tuple[np.ndarray, np.ndarray]:
    """Running precision and recall of ranked detections.

    Args:
        is_tp: ``(D,)`` bool, true positive flags in rank order.
        num_gt: number of ground-truth instances (recall's denominator, > 0).

    Returns:
        ``(precision, recall)``, each ``(D,)`` float64, computed as
        ``tp / (tp + fp)`` and ``tp / num_gt`` with float division.
    """
    tp = np.cumsum(is_tp, dtype=np.int64).astype(np.float64)
    ranks = np.arange(1, is_tp.size + 1, dtype=np.float64)
    return tp / ranks, tp / float(num_gt)


@dataclass
class APResult:
    """AP of every evaluated class and their mean, in percent.

    Attributes:
        mean_ap: mean over ``per_class`` (0.0 when no class is evaluated).
        per_class: class name -> AP in percent, in label order; classes with
            no ground truth in the evaluated videos are absent.
        class_indices: label index of each entry of ``per_class``.
        num_gt: label name -> number of ground-truth instances.
        num_det: label name -> number of detections.
        pr: label name -> ``(precision, recall)`` arrays (kept when asked).
        iou_thr: the IoU threshold.
    """

    mean_ap: float
    per_class: Dict[str, float]
    class_indices: List[int]
    num_gt: Dict[str, int] = field(default_factory=dict)
    num_det: Dict[str, int] = field(default_factory=dict)
    pr: Optional[Dict[str, Tuple[np.ndarray, np.ndarray]]] = None
    iou_thr: float = 0.5

    def to_dict(self) -> dict:
        """JSON-ready figures (no PR arrays)."""
        return dict(
            iou_thr=self.iou_thr,
            mAP=self.mean_ap,
            per_class=dict(self.per_class),
            num_gt=dict(self.num_gt),
            num_det=dict(self.num_det),
        )


def mean_of(aps: List[float]) -> float:
    """Mean of per-class APs (already in percent) the way the official tool takes it."""
    if not aps:
        return 0.0
    return float(np.mean(np.array(aps)))
