"""Box and tube geometry of the MultiSports protocol, and numpy-exact segment means.

Shape shorthand: N, M boxes; L frames of a tube; S segments.

Boxes are ``(x1, y1, x2, y2)`` in pixels. Two area conventions exist in the
protocol (``docs/protocol.md``, "Geometry" and "Linking"):
evaluation uses ``(x2 - x1) * (y2 - y1)``; the linker's tubelet suppression
(inherited from the ACT detector, Kalogeiton et al., ICCV 2017) uses
``(x2 - x1 + 1) * (y2 - y1 + 1)``. Both are selected with ``plus_one``.

Agreement to the last bit with the official tool matters because IoUs are
compared with thresholds; every formula here evaluates the same expression in
the same order and dtype as the official code does.
"""

from typing import Optional, Tuple

import numpy as np

#: What the "+1" pixel convention adds to a width or height.
PIXEL_OFFSET = 1.0


def box_area(boxes: np.ndarray, plus_one: bool = False) -> np.ndarray:
    """Areas of boxes.

    Args:
        boxes: ``(..., 4)`` array of ``(x1, y1, x2, y2)``.
        plus_one: use ``(x2 - x1 + 1) * (y2 - y1 + 1)`` (the linker's
            convention) instead of ``(x2 - x1) * (y2 - y1)``.

    Returns:
        ``(...)`` areas in the dtype of ``boxes``.
    """
    boxes = np.asarray(boxes)
    if plus_one:
        return (boxes[..., 2] - boxes[..., 0] + PIXEL_OFFSET) * (
            boxes[..., 3] - boxes[..., 1] + PIXEL_OFFSET
        )
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def box_intersection(boxes1: np.ndarray, boxes2: np.ndarray, plus_one: bool = False) -> np.ndarray:
    """Element-wise (broadcast) intersection areas, clipped at 0.

    Args:
        boxes1: ``(..., 4)`` boxes.
        boxes2: ``(..., 4)`` boxes broadcastable against ``boxes1``.
        plus_one: add 1 to the intersection's width and height.

    Returns:
        ``(...)`` intersection areas.
    """
    width = np.minimum(boxes1[..., 2], boxes2[..., 2]) - np.maximum(boxes1[..., 0], boxes2[..., 0])
    height = np.minimum(boxes1[..., 3], boxes2[..., 3]) - np.maximum(boxes1[..., 1], boxes2[..., 1])
    if plus_one:
        width = width + PIXEL_OFFSET
        height = height + PIXEL_OFFSET
    return np.maximum(0, width) * np.maximum(0, height)


def exclusive_corners(boxes: np.ndarray) -> np.ndarray:
    """Boxes with one pixel added to the far corners: ``(x1, y1, x2 + 1, y2 + 1)``.

    The 2021 challenge scorer (``docs/protocol.md``, "The 2021 challenge
    server") computes an overlap as ``min(x2a + 1, x2b + 1) - max(x1a, x1b)``:
    the pixel is added to each box, in the box's own dtype, before the
    minimum. The plain :func:`box_intersection` of two such boxes is that
    overlap to the last bit; adding the pixel after the minimum (``plus_one``,
    the linker's convention) can round differently.

    Args:
        boxes: ``(..., 4)`` boxes.

    Returns:
        ``(..., 4)`` boxes in the dtype of ``boxes``.
    """
    boxes = np.asarray(boxes)
    out = boxes.copy()
    out[..., 2:4] = boxes[..., 2:4] + boxes.dtype.type(PIXEL_OFFSET)
    return out


def box_iou(
    boxes1: np.ndarray,
    boxes2: np.ndarray,
    plus_one: bool = False,
    empty_union: Optional[float] = None,
) -> np.ndarray:
    """Pairwise IoU, ``inter / (area1 + area2 - inter)``: the one box IoU of the package.

    Args:
        boxes1: ``(N, 4)`` boxes.
        boxes2: ``(M, 4)`` boxes.
        plus_one: the linker's ``+1`` convention (see the module docstring).
        empty_union: what a pair whose union is not positive (two zero-area
            boxes, or corners given in the wrong order) gets. ``None`` (the
            evaluation) keeps ``inter / union``: ``nan`` for ``0 / 0``, as in
            the official code. A number, e.g. ``0.0`` (proposal matching,
            merging the GT boxes of one person), replaces those entries.

    Returns:
        ``(N, M)`` IoUs in the dtype of the boxes (float64 for integer boxes).
    """
    boxes1 = np.asarray(boxes1)
    boxes2 = np.asarray(boxes2)
    inter = box_intersection(boxes1[:, None, :], boxes2[None, :, :], plus_one)  # (N, M)
    area1 = box_area(boxes1, plus_one)[:, None]  # (N, 1)
    area2 = box_area(boxes2, plus_one)[None, :]  # (1, M)
    union = area1 + area2 - inter  # (N, M)
    with np.errstate(divide='ignore', invalid='ignore'):
        iou = inter / union
    if empty_union is None:
        return iou
    return np.where(union > 0, iou, empty_union)


def segment_sum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sum of consecutive segments, bit-identical to ``np.add.reduce`` of each.

    ``np.add.reduceat`` sums a segment as ``a[0] + pairwise(a[1:])`` while
    ``np.sum``/``np.mean`` compute ``pairwise(a)`` from 0; a 0 inserted before
    every segment makes the two agree exactly (checked by a test).

    Args:
        values: ``(sum(counts),)`` segments laid end to end.
        counts: ``(S,)`` positive segment lengths.

    Returns:
        ``(S,)`` sums, dtype of ``values``.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if counts.size == 0:
        return np.zeros(0, dtype=values.dtype)
    if np.any(counts <= 0):
        raise ValueError('segment_sum needs positive segment lengths')
    zero_positions = np.cumsum(counts + 1) - (counts + 1)  # (S,) where each padded segment starts
    padded = np.zeros(values.size + counts.size, dtype=values.dtype)
    keep = np.ones(padded.size, dtype=bool)
    keep[zero_positions] = False
    padded[keep] = values
    return np.add.reduceat(padded, zero_positions)


def segment_mean(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Means of consecutive segments, bit-identical to ``np.mean`` of each (same dtype)."""
    counts = np.asarray(counts, dtype=np.int64)
    return segment_sum(values, counts) / counts.astype(values.dtype)


def segment_argmax(values: np.ndarray, counts: np.ndarray):
    """``np.argmax`` of each of consecutive segments: the first NaN, else the first maximum.

    Args:
        values: ``(P,)`` segments laid end to end.
        counts: ``(N,)`` positive lengths.

    Returns:
        ``(arg, is_nan)``: ``(N,)`` flat index of the arg-max and whether it is NaN.
    """
    starts = np.cumsum(counts) - counts
    seg = np.repeat(np.arange(counts.size), counts)
    nan = np.isnan(values)
    filled = np.where(nan, -np.inf, values)
    seg_max = np.maximum.reduceat(filled, starts) if counts.size else np.zeros(0)
    seg_nan = np.logical_or.reduceat(nan, starts) if counts.size else np.zeros(0, bool)
    winner = np.where(seg_nan[seg], nan, (filled == seg_max[seg]) & ~nan)
    first = np.full(counts.size, -1, dtype=np.int64)
    hits = np.flatnonzero(winner)
    first_hit = np.concatenate([[True], seg[hits][1:] != seg[hits][:-1]])
    first[seg[hits][first_hit]] = hits[first_hit]
    # Segments of -inf only (impossible for IoUs) would have no hit; fall back to their start.
    first = np.where(first < 0, starts, first)
    return first, seg_nan


def _frames_slice(tube: np.ndarray, first: float, last: float) -> np.ndarray:
    start = int(round(float(first - tube[0, 0])))
    stop = int(round(float(last - tube[0, 0]))) + 1
    return tube[start:stop]


def tube_iou(
    gt_tube: np.ndarray, det_tube: np.ndarray, mode: str = 'st'
) -> Tuple[float, np.generic]:
    """Spatio-temporal IoU of two tubes with contiguous frames, official semantics.

    ``temporal = (tmax - tmin) / (union_end - union_start)`` (frame differences,
    no +1), ``spatial`` = mean 2D IoU (no +1) over the shared frames,
    ``st = spatial * temporal``; tubes that share no frame give the Python
    float ``0.0``. Arithmetic follows the tubes' dtypes (a float32 pair is
    computed in float32) exactly as the official tool does, because the
    dtype decides how a value compares with a threshold.

    Args:
        gt_tube: ``(L1, >=5)`` rows ``[frame, x1, y1, x2, y2, ...]``.
        det_tube: ``(L2, >=5)`` rows ``[frame, x1, y1, x2, y2, ...]``.
        mode: ``'st'``, ``'spatial'`` or ``'temporal'``.

    Returns:
        The IoU: a numpy scalar, or ``0.0`` without temporal overlap.
    """
    if mode not in ('st', 'spatial', 'temporal'):
        raise ValueError(f"mode must be 'st', 'spatial' or 'temporal', got {mode!r}")
    # Python max/min keep the first argument on ties, like the official tool.
    tmin = max(gt_tube[0, 0], det_tube[0, 0])
    tmax = min(gt_tube[-1, 0], det_tube[-1, 0])
    if tmax < tmin:
        return 0.0
    temporal_inter = tmax - tmin
    temporal_union = max(gt_tube[-1, 0], det_tube[-1, 0]) - min(gt_tube[0, 0], det_tube[0, 0])
    with np.errstate(divide='ignore', invalid='ignore'):
        if mode == 'temporal':
            return temporal_inter / temporal_union
        part1 = _frames_slice(gt_tube, tmin, tmax)[:, 1:5]
        part2 = _frames_slice(det_tube, tmin, tmax)[:, 1:5]
        inter = box_intersection(part1, part2)
        spatial = np.mean(inter / (box_area(part1) + box_area(part2) - inter))
        if mode == 'spatial':
            return spatial * 1.0
        return spatial * (temporal_inter / temporal_union)
