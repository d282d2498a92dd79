"""Average the frame detections of several models (or scales) on the same proposals.

Each input is a ``frame_detections.pkl`` written by ``MultiSportsTubeMetric``
(``python tools/test.py CONFIG CKPT --dump-frame-detections FILE``): an
``(M, 8)`` array ``[video_index, frame, label, score, x1, y1, x2, y2]`` in the
official MultiSports layout, one row per (proposal, class). Files made from
the same proposal file with ``top_k=None`` and ``score_thr=0`` (the metric's
defaults) hold the same rows in the same order within a frame; only the
scores differ. The output keeps those rows with the weighted mean score and
is read by ``tools/eval_multisports.py frameAP|link`` like any result file.

Usage::

    python tools/ensemble.py A.pkl B.pkl [C.pkl ...] -o ENSEMBLE.pkl [--weights 2 1 ...]
        [--gt GT.pkl]   # names the videos in errors and checks the rows against the GT
    # test split (no GT): the format-only outputs of tools/test.py --test-split
    python tools/ensemble.py A_frame_detections.pkl B_frame_detections.pkl \
        --out-prefix work_dirs/submission/ensemble [--weights ...]

Format-only results come with ``<prefix>_videos.json``, the ordered video list
their ``video_index`` refers to; it is read for every input that has one,
and inputs whose lists differ are an error (their indices would mean other
videos). ``--out-prefix P`` writes a whole submission: ``P_frame_detections.pkl``,
``P_videos.json`` and ``P_video_detections.pkl`` (the averaged detections
linked into tubes), from the inputs' video list or ``--gt``.

Rows are matched frame by frame; a frame whose rows (count, labels or boxes)
differ between files is an error naming the first such frame and the files,
never a silent average of unrelated boxes.
"""

import argparse
import os.path as osp
import sys
from typing import List, Optional, Sequence

import numpy as np

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from pcca_plugin.evaluation.functional.submission import (  # noqa: E402
    VideoList,
    read_video_list,
    same_video_lists,
    video_list_path_of,
    write_submission,
)
from pcca_plugin.utils.pickle_io import dump_pickle, load_pickle  # noqa: E402

#: Columns of a frame-detection row.
VIDEO_COL, FRAME_COL, LABEL_COL, SCORE_COL = 0, 1, 2, 3
BOX_COLS = slice(4, 8)
NUM_COLUMNS = 8
#: Boxes (pixels) of the same proposal in two files may differ by float rounding
#: (different input scales give the same box up to ~1e-4 px); more is a mismatch.
DEFAULT_BOX_ATOL = 0.01


class EnsembleMismatchError(ValueError):
    """Two result files do not hold the same proposals."""


def _check_array(dets, name: str) -> np.ndarray:
    dets = np.asarray(dets)
    if dets.size == 0:
        dets = dets.reshape(0, NUM_COLUMNS)
    if dets.ndim != 2 or dets.shape[1] != NUM_COLUMNS:
        raise ValueError(
            f'{name}: frame detections are an (M, 8) array [video_index, frame, label, score, '
            f'x1, y1, x2, y2], found shape {dets.shape}'
        )
    if not np.all(np.isfinite(dets)):
        row = int(np.flatnonzero(~np.isfinite(dets).all(axis=1))[0])
        raise ValueError(f'{name}: row {row} holds NaN or inf: {dets[row].tolist()}')
    return dets.astype(np.float64)


def _frame_order(dets: np.ndarray) -> np.ndarray:
    """Row order by (video, frame), keeping the row order inside a frame (stable)."""
    return np.lexsort((dets[:, FRAME_COL], dets[:, VIDEO_COL]))


def _describe(frame: np.ndarray, video_names: Optional[Sequence[str]]) -> str:
    video, number = int(frame[0]), int(frame[1])
    if video_names is not None and 0 <= video < len(video_names):
        return f'video {video_names[video]!r} (index {video}), frame {number}'
    return f'video index {video}, frame {number}'


def ensemble_frame_detections(
    detections: Sequence[np.ndarray],
    weights: Optional[Sequence[float]] = None,
    names: Optional[Sequence[str]] = None,
    video_names: Optional[Sequence[str]] = None,
    box_atol: float = DEFAULT_BOX_ATOL,
) -> np.ndarray:
    """Weighted mean of the scores of frame detections made on the same proposals.

    Args:
        detections: ``F`` arrays ``(M, 8)`` ``[video_index, frame, label, score,
            x1, y1, x2, y2]``.
        weights: ``F`` non-negative weights, not all zero (None: equal).
        names: file names for the messages.
        video_names: ``video_index -> name`` (the GT's test videos) for the messages.
        box_atol: largest box difference (pixels) of matched rows.

    Returns:
        np.ndarray: ``(M, 8)`` float64, rows ordered by (video, frame) and, within
        a frame, as in the first file; ``score = sum_f w_f s_f / sum_f w_f``.

    Raises:
        EnsembleMismatchError: the files do not cover the same frames with the
            same rows (count, label and box); the message names the first
            mismatching frame (in (video, frame) order) and the two files.
        ValueError: bad weights or arrays.
    """
    if len(detections) < 2:
        raise ValueError(f'an ensemble needs at least 2 result files, got {len(detections)}')
    names = list(names) if names is not None else [f'result {i}' for i in range(len(detections))]
    if weights is None:
        weights = [1.0] * len(detections)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(detections),) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(
            f'--weights must be {len(detections)} non-negative numbers, not all zero; '
            f'got {weights.tolist()}'
        )
    arrays = []
    for dets, name in zip(detections, names):
        dets = _check_array(dets, name)
        arrays.append(dets[_frame_order(dets)])
    reference, ref_name = arrays[0], names[0]
    ref_frames, ref_counts = np.unique(reference[:, :2], axis=0, return_counts=True)
    total = weights[0] * reference[:, SCORE_COL]
    for dets, name, weight in zip(arrays[1:], names[1:], weights[1:]):
        _check_same_rows(
            reference, dets, ref_name, name, ref_frames, ref_counts, video_names, box_atol
        )
        total = total + weight * dets[:, SCORE_COL]
    merged = reference.copy()
    merged[:, SCORE_COL] = total / weights.sum()
    return merged


def _check_same_rows(
    reference, dets, ref_name, name, ref_frames, ref_counts, video_names, box_atol
) -> None:
    """Raise :class:`EnsembleMismatchError` at the first frame whose rows differ."""
    frames, counts = np.unique(dets[:, :2], axis=0, return_counts=True)
    if frames.shape != ref_frames.shape or not np.array_equal(frames, ref_frames):
        # First frame (in order) present in only one of the two files.
        union = np.unique(np.concatenate([ref_frames, frames]), axis=0)
        in_ref = {tuple(f) for f in ref_frames.tolist()}
        in_other = {tuple(f) for f in frames.tolist()}
        for frame in union:
            key = tuple(frame.tolist())
            if (key in in_ref) != (key in in_other):
                holder, lacker = (ref_name, name) if key in in_ref else (name, ref_name)
                raise EnsembleMismatchError(
                    f'{_describe(frame, video_names)}: has detections in {holder} but none in '
                    f'{lacker}; ensemble files made on the same proposals and test split'
                )
    bad = np.flatnonzero(counts != ref_counts)
    # Rows of frame i are [starts[i], starts[i] + counts[i]) in both files when counts agree.
    starts = np.concatenate([[0], np.cumsum(ref_counts)[:-1]])
    row_bad = np.zeros(len(ref_frames), dtype=bool)
    row_bad[bad] = True
    if not bad.size:
        label_diff = dets[:, LABEL_COL] != reference[:, LABEL_COL]
        box_diff = np.abs(dets[:, BOX_COLS] - reference[:, BOX_COLS]).max(axis=1) > box_atol
        rows = np.flatnonzero(label_diff | box_diff)
        if rows.size:
            row_bad[np.searchsorted(starts, rows, side='right') - 1] = True
    if row_bad.any():
        first = int(np.flatnonzero(row_bad)[0])
        lo, n_ref = starts[first], ref_counts[first]
        if counts[first] != n_ref:
            what = f'{n_ref} rows in {ref_name} but {counts[first]} in {name}'
        else:
            block_ref = reference[lo : lo + n_ref]
            block = dets[lo : lo + n_ref]
            diff = (block[:, LABEL_COL] != block_ref[:, LABEL_COL]) | (
                np.abs(block[:, BOX_COLS] - block_ref[:, BOX_COLS]).max(axis=1) > box_atol
            )
            row = int(np.flatnonzero(diff)[0])
            what = (
                f'row {row} of the frame is label {block_ref[row, LABEL_COL]:g} box '
                f'{np.round(block_ref[row, BOX_COLS], 2).tolist()} in {ref_name} but label '
                f'{block[row, LABEL_COL]:g} box {np.round(block[row, BOX_COLS], 2).tolist()} '
                f'in {name}'
            )
        raise EnsembleMismatchError(
            f'{_describe(ref_frames[first], video_names)}: {what}. The files were not made on '
            'the same proposals (or with a top_k / score_thr that keeps different rows); '
            'dump them from the same proposal file with the metric defaults'
        )


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('results', nargs='+', help='frame_detections.pkl files (2 or more)')
    outputs = parser.add_mutually_exclusive_group(required=True)
    outputs.add_argument('-o', '--out', help='output frame_detections.pkl')
    outputs.add_argument(
        '--out-prefix',
        help='write a submission: PREFIX_frame_detections.pkl, PREFIX_videos.json, '
        "PREFIX_video_detections.pkl (needs the inputs' _videos.json or --gt)",
    )
    parser.add_argument('--weights', nargs='+', type=float, help='one weight per file')
    parser.add_argument('--gt', help='MultiSports GT pickle: names videos, checks the rows')
    parser.add_argument(
        '--box-atol', type=float, default=DEFAULT_BOX_ATOL, help='box tolerance in pixels'
    )
    return parser.parse_args(argv)


def input_video_list(paths: Sequence[str]) -> Optional[VideoList]:
    """The video list shared by the inputs that have a ``_videos.json`` (None: none has one).

    Raises:
        ValueError: two inputs' lists differ, or only some inputs have one.
    """
    sidecars = [video_list_path_of(path) for path in paths]
    present = [p for p in sidecars if p is not None and osp.isfile(p)]
    if not present:
        return None
    if len(present) != len(paths):
        lacking = [path for path, p in zip(paths, sidecars) if p is None or not osp.isfile(p)]
        raise ValueError(
            f'{lacking[0]} has no <prefix>_videos.json but {present[0]} has: its video_index '
            'may mean other videos. Ensemble results of the same prepared split, each with '
            'its video list'
        )
    lists = [read_video_list(p) for p in present]
    same_video_lists(lists)
    return lists[0]


def main(argv: Optional[List[str]] = None) -> np.ndarray:
    args = parse_args(argv)
    if args.weights is not None and len(args.weights) != len(args.results):
        raise SystemExit(
            f'--weights has {len(args.weights)} values for {len(args.results)} result files'
        )
    detections = []
    for path in args.results:
        if not osp.isfile(path):
            raise SystemExit(f'{path}: no such result file')
        detections.append(load_pickle(path))
    videos = input_video_list(args.results)
    gt = None
    if args.gt:
        from pcca_plugin.evaluation.functional import load_ground_truth

        gt = load_ground_truth(args.gt)
        if videos is not None and videos.names != gt.videos:
            raise ValueError(
                f"{videos.source} lists other videos (or another order) than {args.gt}'s "
                "test_videos[0]; the inputs' video_index does not index this GT"
            )
        videos = VideoList.from_ground_truth(gt)
    merged = ensemble_frame_detections(
        detections,
        args.weights,
        args.results,
        videos.names if videos is not None else None,
        args.box_atol,
    )
    if args.out_prefix:
        if videos is None:
            raise SystemExit(
                '--out-prefix links the tubes, which needs the videos: the inputs have no '
                '<prefix>_videos.json; give --gt'
            )
        paths = write_submission(args.out_prefix, merged, videos)
        print(
            f'{len(args.results)} files, {merged.shape[0]} rows -> '
            + ', '.join(paths[key] for key in ('frame_detections', 'videos', 'video_detections'))
        )
        return merged
    if gt is not None:
        from pcca_plugin.evaluation.functional import check_frame_detections

        check_frame_detections(merged, gt, args.out)
    dump_pickle(merged, args.out)
    print(f'{len(args.results)} files, {merged.shape[0]} rows -> {args.out}')
    return merged


if __name__ == '__main__':
    main()
