"""Average the frame detections of several models (or input scales) made on the same proposals.

Each input is a frame-detection array in the official MultiSports layout,
``(M, 8)`` ``[video_index, frame, label, score, x1, y1, x2, y2]``, one row per
(proposal, class), as ``MultiSportsTubeMetric`` dumps it. Results made from the
same proposal file with ``top_k=None`` and ``score_thr=0`` (the metric's
defaults) hold the same rows in the same order within a frame; only the scores
differ. The ensemble keeps those rows with the weighted mean score.

Rows are matched frame by frame; a frame whose rows (count, labels or boxes)
differ between files is an error naming the first such frame and the files,
never a silent average of unrelated boxes. ``tools/ensemble.py`` is the
command line over :func:`ensemble_files`.

Shape shorthand: F input files, M rows per file.
"""

import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from pcca_plugin.utils.pickle_io import dump_pickle, load_pickle

from .ground_truth import check_frame_detection_shape, check_frame_detections, load_ground_truth
from .submission import (
    VideoList,
    read_video_list,
    same_video_lists,
    video_list_path_of,
    write_submission,
)

#: Columns of a frame-detection row.
VIDEO_COL, FRAME_COL, LABEL_COL, SCORE_COL = 0, 1, 2, 3
BOX_COLS = slice(4, 8)
#: Boxes (pixels) of the same proposal in two files may differ by float rounding
#: (different input scales give the same box up to ~1e-4 px); more is a mismatch.
DEFAULT_BOX_ATOL = 0.01
#: The files of a submission, in the order they are reported.
SUBMISSION_FILES = ('frame_detections', 'videos', 'video_detections')
#: Fewest result files an ensemble averages.
MIN_ENSEMBLE_FILES = 2


class EnsembleMismatchError(ValueError):
    """Two result files do not hold the same proposals."""


def _check_array(dets, name: str) -> np.ndarray:
    """The ``(M, 8)`` float64 rows of one input, or a ValueError naming ``name``."""
    dets = check_frame_detection_shape(np.asarray(dets), name)
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
    if len(detections) < MIN_ENSEMBLE_FILES:
        raise ValueError(
            f'an ensemble needs at least {MIN_ENSEMBLE_FILES} result files, got {len(detections)}'
        )
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


def _check_same_frames(ref_frames, frames, ref_name, name, video_names) -> None:
    """Raise :class:`EnsembleMismatchError` at the first frame only one of two files has."""
    if frames.shape == ref_frames.shape and np.array_equal(frames, ref_frames):
        return
    in_ref = {tuple(f) for f in ref_frames.tolist()}
    in_other = {tuple(f) for f in frames.tolist()}
    for frame in np.unique(np.concatenate([ref_frames, frames]), axis=0):
        key = tuple(frame.tolist())
        if (key in in_ref) != (key in in_other):
            holder, lacker = (ref_name, name) if key in in_ref else (name, ref_name)
            raise EnsembleMismatchError(
                f'{_describe(frame, video_names)}: has detections in {holder} but none in '
                f'{lacker}; ensemble files made on the same proposals and test split'
            )


def _check_same_rows(
    reference, dets, ref_name, name, ref_frames, ref_counts, video_names, box_atol
) -> None:
    """Raise :class:`EnsembleMismatchError` at the first frame whose rows differ."""
    frames, counts = np.unique(dets[:, :2], axis=0, return_counts=True)
    _check_same_frames(ref_frames, frames, ref_name, name, video_names)
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
    if not row_bad.any():
        return
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


def ensemble_files(
    result_files: Sequence[str],
    out: Optional[str] = None,
    out_prefix: Optional[str] = None,
    weights: Optional[Sequence[float]] = None,
    gt_file: Optional[str] = None,
    box_atol: float = DEFAULT_BOX_ATOL,
    archive: bool = False,
) -> Tuple[np.ndarray, Dict[str, str]]:
    """Average frame-detection files and write the result (``tools/ensemble.py``).

    Everything is read and checked before the first file is written.

    Args:
        result_files: ``frame_detections.pkl`` files (at least 2), each made on
            the same proposals. A format-only result ``P_frame_detections.pkl``
            comes with ``P_videos.json``, the ordered video list its
            ``video_index`` refers to; inputs whose lists differ are an error.
        out: write the averaged ``(M, 8)`` array here (exactly one of ``out``
            and ``out_prefix``).
        out_prefix: write a whole submission ``P_frame_detections.pkl``,
            ``P_videos.json``, ``P_video_detections.pkl`` (the averaged
            detections linked into tubes); needs the inputs' video list or ``gt_file``.
        weights: one non-negative weight per file (None: equal).
        gt_file: a MultiSports GT pickle: names videos in messages, checks the
            rows against its ``test_videos[0]``.
        box_atol: largest box difference (pixels) of matched rows.
        archive: with ``out_prefix``, also write ``P_submission.zip``, the
            archive the 2021 challenge server read
            (``write_submission(..., archive=True)``).

    Returns:
        ``(merged, written)``: the ``(M, 8)`` float64 average and the files
        written, ``{'frame_detections': path}`` or, with ``out_prefix``, one
        path per name of :data:`SUBMISSION_FILES` (and ``'archive'`` with ``archive``).

    Raises:
        FileNotFoundError: a result file does not exist.
        ValueError: bad arguments, inputs that do not match (named), or rows
            outside the GT's videos.
    """
    if (out is None) == (out_prefix is None):
        raise ValueError('give exactly one of out (an array file) and out_prefix (a submission)')
    if archive and out_prefix is None:
        raise ValueError(
            '--zip archives a submission: give --out-prefix PREFIX (it writes '
            'PREFIX_submission.zip besides the three files)'
        )
    if weights is not None and len(weights) != len(result_files):
        raise ValueError(
            f'--weights has {len(weights)} values for {len(result_files)} result files; give '
            'one weight per file'
        )
    for path in result_files:
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path}: no such result file')
    videos = input_video_list(result_files)
    gt = None
    if gt_file:
        gt = load_ground_truth(gt_file)
        if videos is not None and videos.names != gt.videos:
            raise ValueError(
                f"{videos.source} lists other videos (or another order) than {gt_file}'s "
                "test_videos[0]; the inputs' video_index does not index this GT"
            )
        videos = VideoList.from_ground_truth(gt)
    if out_prefix is not None and videos is None:
        raise ValueError(
            '--out-prefix links the tubes, which needs the videos: the inputs have no '
            '<prefix>_videos.json; give --gt GT.pkl'
        )
    detections: List[np.ndarray] = [load_pickle(path) for path in result_files]
    merged = ensemble_frame_detections(
        detections,
        weights,
        result_files,
        videos.names if videos is not None else None,
        box_atol,
    )
    if out_prefix is not None:
        paths = write_submission(out_prefix, merged, videos, archive=archive)
        written = {key: paths[key] for key in SUBMISSION_FILES + (('archive',) if archive else ())}
        return merged, written
    if gt is not None:
        check_frame_detections(merged, gt, out)
    dump_pickle(merged, out)
    return merged, {'frame_detections': out}
