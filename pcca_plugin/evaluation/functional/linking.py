"""Frame-to-tube linking (the MOC / ACT linker with K = 1), vectorised.

Protocol: ``docs/protocol.md`` ("Linking frame detections into tubes"): the
tubelet linking of ACT (Kalogeiton et al., ICCV 2017) as
used by MOC (Li et al., ECCV 2020) and the MultiSports baselines. The
semantics follow the protocol (each box keeps its own score; mmaction2
1.2.0's port stores a stale score instead).

Why it is fast. The official linker loops over videos x labels x frames in
Python. Here every (video, label) sequence advances together, one frame at a
time (about 750 steps for MultiSports): per step, numpy computes the ranks of
all live tubes, the IoUs between every live tube and the boxes of its
sequence, and the greedy assignment for all sequences at once. The one-pass
tubelet suppression runs beforehand for all (video, label, frame) groups,
batched by group size. Only the rare sequences where two tubes want the same
box, or where two tubes' mean scores are too close to order by running sums,
take a slower (still vectorised) path that reproduces the official order
exactly. Tie orders come from the very ``np.argsort`` calls the official code
makes, on arrays of the same values in the same order (``tie_order='stable'``:
stable sorts, ties in input order, the same figures on every machine).

Memory: sequences of different videos never interact, so the videos are
linked in consecutive blocks of about ``_LINK_BLOCK_ROWS`` detections; the
linker's per-box state exists for one block at a time.

Shape shorthand: R frame detections, K kept boxes (after suppression),
G groups of one size n, S live tubes at a step, P (tube, box) pairs.
"""

import warnings
from typing import Dict, List, Tuple, Union

import numpy as np

from .ap import check_tie_order, rank_descending, rank_descending_reversed
from .geometry import box_area, box_intersection, box_iou, segment_mean
from .ground_truth import (
    FrameDetections,
    GroundTruth,
    check_frame_detections,
    load_frame_detections,
    load_ground_truth,
)
from .progress import track

#: Tubelet suppression: IoU (``+1`` areas) above which a box's score is reduced.
NMS_IOU_THR = 0.6
#: Boxes kept per (video, label, frame) after suppression.
NMS_TOP_K = 10
#: A live tube takes a box whose IoU with its last box is at least this.
LINK_IOU_THR = 0.5
#: Kept tubes are at least this many frames long.
MIN_TUBE_LENGTH = 15
#: Kept tubes have a mean box score of at least this.
MIN_TUBE_SCORE = 0.005
#: Columns of an output tube row: frame, x1, y1, x2, y2, box score.
TUBE_COLUMNS = 6
#: Safety factor on the rounding bound of a running sum (see ``_rank_live``).
_ROUNDING_SAFETY = 8.0
#: Sort key offset that puts new tubes after the extended ones within a sequence.
_NEW_TUBE_KEY = 1 << 30
#: Bits of the within-sequence key when a sequence and a key are merged into one int64.
_KEY_BITS = 32
#: Upper bound on the elements of one batched pairwise-IoU block.
_NMS_BLOCK_ELEMENTS = 1 << 18
#: Detections linked together: whole videos are grouped up to about this many rows.
_LINK_BLOCK_ROWS = 1 << 20

VideoTubes = Dict[int, List[Tuple[str, float, np.ndarray]]]


def nms_tubelets(
    dets: np.ndarray,
    overlap_thr: float = NMS_IOU_THR,
    top_k: int = NMS_TOP_K,
    tie_order: str = 'official',
) -> np.ndarray:
    """One-pass tubelet suppression of one frame's boxes of one label (K = 1).

    Boxes are visited by ``np.argsort(scores)[::-1]``; the best remaining box
    removes every remaining box whose IoU (``+1`` areas) with it exceeds
    ``overlap_thr`` and multiplies that box's score by ``1 - IoU``; the boxes
    are then re-sorted the same way by their new scores and cut to ``top_k``.

    Args:
        dets: ``(N, 5)`` rows ``[x1, y1, x2, y2, score]``.
        overlap_thr: suppression IoU threshold.
        top_k: boxes kept.
        tie_order: ``'official'`` (``np.argsort(scores)[::-1]``) or
            ``'stable'`` (best first, ties in input order).

    Returns:
        ``(min(N, top_k), 5)`` float64 rows, new scores, best first.
    """
    check_tie_order(tie_order)
    dets = np.array(dets, dtype=np.float64).reshape(-1, 5)
    if dets.shape[0] == 0:
        return dets
    scores = dets[:, 4]
    iou = box_iou(dets[:, :4], dets[:, :4], plus_one=True)  # (N, N)
    weight = np.ones_like(scores)
    remaining = rank_descending_reversed(scores, tie_order)
    while remaining.size > 0:
        pivot, others = remaining[0], remaining[1:]
        overlap = iou[pivot, others]
        suppressed = overlap > overlap_thr
        weight[others[suppressed]] = 1 - overlap[suppressed]
        remaining = others[overlap <= overlap_thr]
    dets[:, 4] = scores * weight
    return dets[rank_descending_reversed(dets[:, 4], tie_order)][:top_k]


def _batched_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    group_starts: np.ndarray,
    group_sizes: np.ndarray,
    overlap_thr: float,
    top_k: int,
    tie_order: str = 'official',
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`nms_tubelets` for many groups of consecutive rows at once.

    Args:
        boxes: ``(R, 4)`` float64.
        scores: ``(R,)`` float64.
        group_starts: ``(Q,)`` first row of each group.
        group_sizes: ``(Q,)`` rows of each group (>= 1).
        overlap_thr: suppression IoU threshold.
        top_k: boxes kept per group.
        tie_order: ``'official'`` or ``'stable'`` (see :func:`nms_tubelets`).

    Returns:
        ``(rows, new_scores, positions)``: ``(K,)`` kept rows in (group,
        output position) order, their new scores and their position (0 =
        best) within the group's output.
    """
    kept_sizes = np.minimum(group_sizes, top_k)
    out_offsets = np.cumsum(kept_sizes) - kept_sizes
    total = int(kept_sizes.sum())
    out_rows = np.empty(total, dtype=np.int64)
    out_scores = np.empty(total, dtype=np.float64)
    out_pos = np.empty(total, dtype=np.int64)
    single = np.flatnonzero(group_sizes == 1)  # one box: kept as it is, position 0
    out_rows[out_offsets[single]] = group_starts[single]
    out_scores[out_offsets[single]] = scores[group_starts[single]]
    out_pos[out_offsets[single]] = 0
    for size in np.unique(group_sizes[group_sizes > 1]):
        size = int(size)
        groups = np.flatnonzero(group_sizes == size)
        keep = min(size, top_k)
        block = max(1, _NMS_BLOCK_ELEMENTS // (size * size))
        for begin in range(0, groups.size, block):
            gids = groups[begin : begin + block]
            rows = group_starts[gids][:, None] + np.arange(size)  # (G, n)
            group_scores = scores[rows]  # (G, n) input order
            order = rank_descending_reversed(group_scores, tie_order)  # (G, n) visiting order
            new_scores = _suppress(boxes[rows], group_scores, order, overlap_thr)
            changed = np.any(new_scores != group_scores, axis=1)
            if changed.any():
                order[changed] = rank_descending_reversed(new_scores[changed], tie_order)
            order = order[:, :keep]  # (G, keep)
            dest = out_offsets[gids][:, None] + np.arange(keep)  # (G, keep)
            out_rows[dest] = np.take_along_axis(rows, order, axis=1)
            out_scores[dest] = np.take_along_axis(new_scores, order, axis=1)
            out_pos[dest] = np.arange(keep)
    return out_rows, out_scores, out_pos


def _suppress(
    boxes: np.ndarray, scores: np.ndarray, order: np.ndarray, overlap_thr: float
) -> np.ndarray:
    """Suppression rounds for ``G`` groups of ``n`` boxes.

    Args:
        boxes: ``(G, n, 4)``.
        scores: ``(G, n)``.
        order: ``(G, n)`` visiting order (indices into n).
        overlap_thr: suppression IoU threshold.

    Returns:
        ``(G, n)`` new scores (``score * (1 - IoU)`` for suppressed boxes).
    """
    num_groups, size = scores.shape
    first, second = np.triu_indices(size, 1)
    inter = box_intersection(boxes[:, first], boxes[:, second], plus_one=True)  # (G, n(n-1)/2)
    area = box_area(boxes, plus_one=True)  # (G, n)
    with np.errstate(divide='ignore', invalid='ignore'):
        pair_iou = inter / (area[:, second] + area[:, first] - inter)
    needs = np.any((pair_iou > overlap_thr) | np.isnan(pair_iou), axis=1)
    weight = np.ones_like(scores)
    if not needs.any():
        return scores * weight
    sub_boxes = boxes[needs]
    inter = box_intersection(sub_boxes[:, :, None, :], sub_boxes[:, None, :, :], plus_one=True)
    sub_area = area[needs]
    with np.errstate(divide='ignore', invalid='ignore'):
        iou = inter / (sub_area[:, None, :] + sub_area[:, :, None] - inter)  # (g, n, n)
    sub = np.flatnonzero(needs)
    sub_iou = iou  # (g, n, n)
    sub_order = order[sub]  # (g, n)
    arange = np.arange(sub.size)
    remaining = np.ones(sub_order.shape, dtype=bool)  # (g, n) over visiting positions
    sub_weight = np.ones(sub_order.shape)
    for _ in range(size):
        active = remaining.any(axis=1)
        if not active.any():
            break
        pivot_pos = np.argmax(remaining, axis=1)
        pivot = sub_order[arange, pivot_pos]
        overlap = np.take_along_axis(sub_iou[arange, pivot, :], sub_order, axis=1)  # (g, n)
        others = remaining.copy()
        others[arange, pivot_pos] = False
        suppressed = others & (overlap > overlap_thr)
        group_idx, pos_idx = np.nonzero(suppressed)
        sub_weight[group_idx, sub_order[group_idx, pos_idx]] = 1 - overlap[group_idx, pos_idx]
        remaining = others & (overlap <= overlap_thr)
    weight[sub] = sub_weight
    return scores * weight


def _exact_means(
    last_box: np.ndarray, counts: np.ndarray, box_prev: np.ndarray, box_score: np.ndarray
) -> np.ndarray:
    """``np.mean`` of each tube's box scores, walking the tubes back in parallel.

    Args:
        last_box: ``(U,)`` kept-box index of each tube's last box.
        counts: ``(U,)`` tube lengths.
        box_prev: ``(K,)`` previous box of every kept box in its tube.
        box_score: ``(K,)`` scores of the kept boxes.

    Returns:
        ``(U,)`` float64 means, bit-identical to ``np.mean(scores_in_order)``.
    """
    offsets = np.cumsum(counts) - counts
    buffer = np.empty(int(counts.sum()), dtype=np.float64)
    current = last_box.copy()
    for back in range(int(counts.max())):
        alive = np.flatnonzero(counts > back)
        buffer[offsets[alive] + counts[alive] - 1 - back] = box_score[current[alive]]
        current[alive] = box_prev[current[alive]]
    return segment_mean(buffer, counts)


class _Live:
    """The live tubes of all sequences, sorted by sequence, in official list order within one.

    Two arrays instead of one per field, so that a reordering is two gathers:
    ``ints`` ``(4, S)`` int64 rows ``seq, tube, last, cnt`` (sequence, tube
    id, kept-box index of the last box, length) and ``floats`` ``(2, S)``
    float64 rows ``sum, abs`` (running sum of the box scores and of their
    absolute values, for the rounding bound).
    """

    SEQ, TUBE, LAST, CNT = range(4)
    SUM, ABS = range(2)

    def __init__(self, ints: np.ndarray, floats: np.ndarray):
        self.ints = ints
        self.floats = floats

    @classmethod
    def empty(cls) -> '_Live':
        return cls(np.zeros((4, 0), dtype=np.int64), np.zeros((2, 0)))

    @property
    def size(self) -> int:
        return self.ints.shape[1]

    def take(self, idx: np.ndarray) -> '_Live':
        return _Live(self.ints[:, idx], self.floats[:, idx])

    seq = property(lambda self: self.ints[self.SEQ])
    tube = property(lambda self: self.ints[self.TUBE])
    last = property(lambda self: self.ints[self.LAST])
    cnt = property(lambda self: self.ints[self.CNT])
    sum = property(lambda self: self.floats[self.SUM])
    abs = property(lambda self: self.floats[self.ABS])


class _Linker:
    """State of the frame-synchronous linker over all (video, label) sequences."""

    def __init__(self, dets: FrameDetections, rows: np.ndarray, gt: GroundTruth, cfg: dict):
        """Suppress the boxes of detections ``rows`` (``(R,)`` into ``dets``, in input order)."""
        self.gt = gt
        self.cfg = cfg
        self.num_labels = gt.num_labels
        seq = dets.video[rows].astype(np.int64) * self.num_labels + dets.label[rows]  # (R,)
        num_seq = gt.num_videos * self.num_labels
        key = dets.frame[rows].astype(np.int64) * num_seq + seq  # (R,) frame-major
        order = np.argsort(key, kind='stable')  # input order kept within a group
        key = key[order]
        seq = seq[order]
        rows = rows[order]  # (R,) global rows in (frame, sequence, input) order
        del order
        boundaries = np.flatnonzero(key[1:] != key[:-1]) + 1
        group_starts = np.concatenate([[0], boundaries]).astype(np.int64)[: key.size]
        group_sizes = np.diff(np.concatenate([group_starts, [key.size]]))  # (Q,) all >= 1
        del boundaries
        block = dets.array.take(rows, axis=0)  # (R, 8) sorted; whole rows gather fastest
        boxes = np.ascontiguousarray(block[:, 4:8], dtype=np.float64)  # (R, 4)
        scores = np.ascontiguousarray(block[:, 3], dtype=np.float64)  # (R,)
        del block  # freed now: only the copied columns stay
        kept, new_scores, positions = _batched_nms(
            boxes, scores, group_starts, group_sizes, cfg['nms_thr'], cfg['top_k'], cfg['tie_order']
        )
        del scores, group_starts, group_sizes
        self.box = boxes[kept]  # (K, 4)
        del boxes
        self.score = new_scores  # (K,)
        self.pos = positions  # (K,)
        self.seq = seq[kept]  # (K,)
        self.frame = key[kept] // num_seq  # (K,) non-decreasing
        del seq, key, kept
        num_kept = self.score.size
        self.box_tube = np.full(num_kept, -1, dtype=np.int64)
        self.box_prev = np.full(num_kept, -1, dtype=np.int64)
        self.box_area = box_area(self.box)  # (K,) evaluation convention
        self.tube_start: List[np.ndarray] = []
        self.next_tube = 0
        self.finished: List[Tuple[np.ndarray, ...]] = []
        self.live = _Live.empty()
        self.video_over = set((gt.nframes + 1).tolist())  # steps at which some video has ended

    # -- one step -------------------------------------------------------------------------

    def _finish(self, idx: np.ndarray, time: int, end: int, key: np.ndarray) -> None:
        if idx.size == 0:
            return
        live = self.live
        self.finished.append(
            (
                live.tube[idx],
                live.seq[idx],
                np.full(idx.size, time, dtype=np.int64),
                np.full(idx.size, end, dtype=np.int64),
                key,
            )
        )

    def _rank_live(self) -> np.ndarray:
        """Rank of each live tube within its sequence by mean score (official argsort order)."""
        live = self.live
        seq_all = live.seq  # (S,) sorted
        rank = np.zeros(seq_all.size, dtype=np.int64)
        shared = seq_all[1:] == seq_all[:-1]  # (S - 1,) a tube and the next share a sequence
        if not shared.any():
            return rank
        crowded = np.zeros(seq_all.size, dtype=bool)
        crowded[1:] = shared
        crowded[:-1] |= shared
        crowded = np.flatnonzero(crowded)  # tubes sharing a sequence
        seq = seq_all[crowded]
        avg = live.sum[crowded] / live.cnt[crowded]
        order = np.lexsort((-avg, seq))
        seq_sorted = seq[order]
        seq_first = np.concatenate([[True], seq_sorted[1:] != seq_sorted[:-1]])
        first_index = np.maximum.accumulate(np.where(seq_first, np.arange(seq.size), 0))
        rank[crowded[order]] = np.arange(seq.size) - first_index
        # Running sums differ from numpy's pairwise sums by rounding; resolve close calls exactly.
        eps = np.finfo(np.float64).eps
        tol = _ROUNDING_SAFETY * eps * (live.abs[crowded] + np.abs(avg))
        close = (~seq_first[1:]) & (
            np.abs(avg[order[1:]] - avg[order[:-1]]) <= tol[order[1:]] + tol[order[:-1]]
        )
        if close.any():
            ambiguous_seqs = np.unique(seq_sorted[1:][close])
            members = np.flatnonzero(np.isin(seq_all, ambiguous_seqs))  # list order within a seq
            exact = _exact_means(live.last[members], live.cnt[members], self.box_prev, self.score)
            member_seq = seq_all[members]
            firsts_all = np.flatnonzero(np.concatenate([[True], member_seq[1:] != member_seq[:-1]]))
            sizes = np.diff(np.concatenate([firsts_all, [members.size]]))
            for size in np.unique(sizes):
                firsts = firsts_all[sizes == size]
                idx = firsts[:, None] + np.arange(size)  # (g, n) in list order
                ranked = rank_descending(exact[idx], self.cfg['tie_order'])  # per sequence
                rank[members[np.take_along_axis(idx, ranked, axis=1)]] = np.arange(size)
        return rank

    def step(self, t: int, lo: int, hi: int) -> None:
        """Link the kept boxes ``lo:hi`` (all of frame ``t``) into the live tubes."""
        live = self.live
        b_seq = self.seq[lo:hi]
        if live.size and t in self.video_over:
            ended = self.gt.nframes[live.seq // self.num_labels] < t
            if ended.any():  # the video is over: its live tubes finish in list order
                idx = np.flatnonzero(ended)
                self._finish(idx, np.iinfo(np.int64).max, t - 1, idx)
                live = self.live = live.take(np.flatnonzero(~ended))
        claimed = np.zeros(hi - lo, dtype=bool)
        ext_keys = np.zeros(0, dtype=np.int64)
        if live.size:
            rank = self._rank_live()
            assign = self._assign(rank, lo, b_seq)
            extended = assign >= 0
            not_ext = np.flatnonzero(~extended)
            self._finish(not_ext, t, t - 1, -rank[not_ext])  # reverse rank order within a frame
            ext = np.flatnonzero(extended)
            claimed[assign[ext]] = True
            boxes = lo + assign[ext]
            live = live.take(ext)
            self.box_prev[boxes] = live.last
            self.box_tube[boxes] = live.tube
            new_scores = self.score[boxes]
            live.ints[_Live.LAST] = boxes
            live.ints[_Live.CNT] += 1
            live.floats[_Live.SUM] += new_scores
            live.floats[_Live.ABS] += np.abs(new_scores)
            ext_keys = rank[ext]
        new_boxes = lo + np.flatnonzero(~claimed)
        new_ids = self.next_tube + np.arange(new_boxes.size)
        self.next_tube += new_boxes.size
        self.tube_start.append(np.full(new_boxes.size, t, dtype=np.int64))
        self.box_tube[new_boxes] = new_ids
        new_scores = self.score[new_boxes]
        new_ints = np.stack(
            [self.seq[new_boxes], new_ids, new_boxes, np.ones(new_boxes.size, dtype=np.int64)]
        )  # (4, n)
        new_floats = np.stack([new_scores, np.abs(new_scores)])  # (2, n)
        keys = np.concatenate([ext_keys, _NEW_TUBE_KEY + self.pos[new_boxes]])  # (S',) < 2^31
        ints = np.concatenate([live.ints, new_ints], axis=1)  # (4, S')
        floats = np.concatenate([live.floats, new_floats], axis=1)  # (2, S')
        # Official list order: by sequence, then extended tubes by rank, then new ones by position.
        order = np.argsort((ints[_Live.SEQ] << _KEY_BITS) | keys, kind='stable')
        self.live = _Live(ints[:, order], floats[:, order])

    def _assign(self, rank: np.ndarray, first_box: int, b_seq: np.ndarray) -> np.ndarray:
        """Greedy assignment: in rank order each tube takes its best-scored overlapping box.

        Args:
            rank: ``(S,)`` rank of each live tube within its sequence.
            first_box: kept-box index of the frame's first box.
            b_seq: ``(B,)`` sequence of each of the frame's boxes (sorted).

        Returns:
            ``(S,)`` index into this frame's boxes, -1 for tubes left without one.
        """
        live = self.live
        n_live = live.size
        assign = np.full(n_live, -1, dtype=np.int64)
        if b_seq.size == 0:
            return assign
        lo = np.searchsorted(b_seq, live.seq, 'left')
        counts = np.searchsorted(b_seq, live.seq, 'right') - lo
        total = int(counts.sum())
        if total == 0:
            return assign
        pair_tube = np.repeat(np.arange(n_live), counts)  # (P,) tube-major, boxes by position
        pair_box = lo[pair_tube] + np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        frame_rows = first_box + pair_box
        last_rows = live.last[pair_tube]
        inter = box_intersection(self.box[frame_rows], self.box[last_rows])
        with np.errstate(divide='ignore', invalid='ignore'):
            iou = inter / (self.box_area[frame_rows] + self.box_area[last_rows] - inter)
        valid = np.flatnonzero(iou >= self.cfg['link_iou_thr'])
        if valid.size == 0:
            return assign
        # Boxes of a frame are sorted best score first: the first valid pair is the tube's pick.
        valid_tube = pair_tube[valid]
        first = np.concatenate([[True], valid_tube[1:] != valid_tube[:-1]])
        choice_tube = valid_tube[first]
        choice_box = pair_box[valid[first]]
        picked_twice = np.bincount(choice_box, minlength=b_seq.size) > 1
        assign[choice_tube] = choice_box
        if not picked_twice.any():
            return assign
        # Conflicts: replay the greedy order for the sequences concerned.
        conflict_seqs = np.unique(b_seq[np.flatnonzero(picked_twice)])
        in_conflict = np.isin(live.seq, conflict_seqs)
        assign[in_conflict] = -1
        pairs = valid[in_conflict[pair_tube[valid]]]
        taken = np.zeros(b_seq.size, dtype=bool)
        for r in range(int(rank[in_conflict].max()) + 1):
            cand = pairs[(rank[pair_tube[pairs]] == r) & ~taken[pair_box[pairs]]]
            if cand.size == 0:
                continue
            cand_tube = pair_tube[cand]
            first = np.concatenate([[True], cand_tube[1:] != cand_tube[:-1]])
            assign[cand_tube[first]] = pair_box[cand[first]]
            taken[pair_box[cand[first]]] = True
        return assign

    # -- whole run ------------------------------------------------------------------------

    def run(self) -> VideoTubes:
        if self.score.size:
            last_frame = int(self.gt.nframes.max()) + 1
            bounds = np.searchsorted(self.frame, np.arange(1, last_frame + 2))
            for t in range(1, last_frame + 1):
                lo, hi = int(bounds[t - 1]), int(bounds[t])
                if hi > lo or self.live.size:
                    self.step(t, lo, hi)
        return self._collect()

    def _collect(self) -> VideoTubes:
        gt, cfg = self.gt, self.cfg
        result: VideoTubes = {label: [] for label in range(self.num_labels)}
        if not self.finished:
            return result
        tube, seq, time, end, key = (np.concatenate(parts) for parts in zip(*self.finished))
        start = np.concatenate(self.tube_start)[tube]
        length = end - start + 1
        long_enough = length >= cfg['len_thr']
        tube, seq, time, end, key, start, length = (
            a[long_enough] for a in (tube, seq, time, end, key, start, length)
        )
        video, label = seq // self.num_labels, seq % self.num_labels
        out_order = np.lexsort((key, time, video, label))  # the official output order
        tube, video, label, start, length = (
            a[out_order] for a in (tube, video, label, start, length)
        )
        out_rank = np.full(self.next_tube, -1, dtype=np.int64)
        out_rank[tube] = np.arange(tube.size)
        member = np.flatnonzero(out_rank[self.box_tube] >= 0)
        member = member[np.argsort(out_rank[self.box_tube[member]], kind='stable')]  # frame order
        means = segment_mean(self.score[member], length) if tube.size else np.zeros(0)
        rows = np.empty((member.size, TUBE_COLUMNS), dtype=np.float32)
        rows[:, 0] = self.frame[member]
        rows[:, 1:5] = self.box[member]
        rows[:, 5] = self.score[member]
        offsets = np.cumsum(length) - length
        keep = np.flatnonzero(means >= cfg['score_thr'])
        for i in keep:
            tube_rows = rows[offsets[i] : offsets[i] + length[i]]
            result[int(label[i])].append((gt.videos[video[i]], means[i], tube_rows))
        return result


def _video_blocks(counts: np.ndarray, block_rows: int) -> List[Tuple[int, int]]:
    """Consecutive video ranges ``[v0, v1)`` holding about ``block_rows`` detections each.

    Args:
        counts: ``(V,)`` detections per video.
        block_rows: target rows per block (a video is never split).

    Returns:
        The ranges of the videos that have detections, in video order.
    """
    blocks: List[Tuple[int, int]] = []
    first, last, rows = -1, -1, 0
    for video in np.flatnonzero(counts).tolist():
        if first >= 0 and rows + counts[video] > block_rows:
            blocks.append((first, last + 1))
            first, rows = -1, 0
        if first < 0:
            first = video
        rows += int(counts[video])
        last = video
    if first >= 0:
        blocks.append((first, last + 1))
    return blocks


def link_tubes(
    gt: Union[str, dict, GroundTruth],
    frame_detections: Union[str, np.ndarray],
    len_thr: int = MIN_TUBE_LENGTH,
    score_thr: float = MIN_TUBE_SCORE,
    nms_thr: float = NMS_IOU_THR,
    top_k: int = NMS_TOP_K,
    link_iou_thr: float = LINK_IOU_THR,
    progress: bool = False,
    tie_order: str = 'official',
) -> VideoTubes:
    """Link frame detections into scored tubes per video and label.

    Args:
        gt: GT path, dict or :class:`GroundTruth` (gives videos and nframes).
        frame_detections: ``(M, 8)`` array ``[video_index, frame, label,
            score, x1, y1, x2, y2]`` or a path (pickle, or ``.npy`` read
            memory-mapped).
        len_thr: minimum tube length in frames (``last - first + 1``).
        score_thr: minimum tube score (mean box score).
        nms_thr: tubelet-suppression IoU threshold (``+1`` areas).
        top_k: boxes kept per (video, label, frame).
        link_iou_thr: minimum IoU (no ``+1``) to extend a tube.
        progress: show a progress bar over blocks of videos.
        tie_order: ``'official'``: the official ``np.argsort`` calls rank
            tied box scores and tied tube means (as the official tool under
            the same numpy build); ``'stable'``: ties in input order (boxes)
            and in list order (live tubes), the same on every machine.

    Returns:
        ``{label: [(video_name, tube_score, tube), ...]}`` for every label;
        ``tube`` is ``(L, 6)`` float32 ``[frame, x1, y1, x2, y2, box_score]``,
        ``tube_score`` a ``np.float64``. Lists follow the official order
        (videos in GT order, tubes in the order they finish).
    """
    check_tie_order(tie_order)
    gt = load_ground_truth(gt)
    frame_detections, source = load_frame_detections(frame_detections)
    dets = check_frame_detections(frame_detections, gt, source)
    if dets.array.shape[0] == 0:
        warnings.warn(f'{source}: no frame detections to link; no tubes', stacklevel=2)
    cfg = dict(
        len_thr=len_thr,
        score_thr=score_thr,
        nms_thr=nms_thr,
        top_k=top_k,
        link_iou_thr=link_iou_thr,
        tie_order=tie_order,
    )
    result: VideoTubes = {label: [] for label in range(gt.num_labels)}
    counts = np.bincount(dets.video, minlength=gt.num_videos)  # (V,)
    for v0, v1 in track(_video_blocks(counts, _LINK_BLOCK_ROWS), 'linking videos', progress):
        rows = np.flatnonzero((dets.video >= v0) & (dets.video < v1))  # (R,) input order
        for label, tubes in _Linker(dets, rows, gt, cfg).run().items():
            result[label].extend(tubes)
    return result
