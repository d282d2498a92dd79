"""Validated, array-backed views of MultiSports ground truth and detection files.

Formats: ``docs/protocol.md``. Every check raises with the file (``source``),
the record and the problem, so that nothing is silently dropped. Shape
shorthand: V test videos, C labels, T ground-truth tubes, M frame detections.

Memory. A MultiSports-sized frame-detection file (10 M rows, 640 MB of
float64) is read once: a pickle is unpickled straight from the file with the
array keeping the unpickled bytes as its buffer, a ``.npy`` file is
memory-mapped. Validation runs over blocks of rows and keeps only compact
integer copies of the video, frame and label columns.
"""

import os
import os.path as osp
import warnings
from dataclasses import dataclass
from typing import Dict, List, Mapping, Sequence, Tuple, Union

import numpy as np

from pcca_plugin.utils.multisports_format import (
    EVALUATION_GT_KEYS,
    EXCLUDED_CLASS_NAMES,
    check_gt_keys,
    evaluated_label_indices,
)
from pcca_plugin.utils.pickle_io import (
    _RestrictedUnpickler,
    is_text_bytes_pickle,
    load_pickle,
    run_unpickler,
    unpickle_text_arrays,
)

#: Columns of a frame-detection row: ``[video_index, frame, label, score, x1, y1, x2, y2]``.
FRAME_DET_COLUMNS = ('video_index', 'frame', 'label', 'score', 'x1', 'y1', 'x2', 'y2')
#: What the video index and the label of a frame-detection row index (the fix of a bad row).
VIDEO_INDEX_HINT = "a video index counts the videos of {gt}'s 'test_videos'[0] from 0"
LABEL_HINT = "a label counts the class names of {gt}'s 'labels' from 0"
#: Bytes of a pickle's start that tell its protocol (``PROTO`` and its number).
PICKLE_HEAD_BYTES = 2
#: Columns of a ground-truth tube row.
GT_TUBE_COLUMNS = 5
#: Minimum columns of a detected tube row ``[frame, x1, y1, x2, y2, box_score]``.
DET_TUBE_MIN_COLUMNS = 5
#: dtypes whose arithmetic the evaluator reproduces bit for bit.
EXACT_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
#: Tubes checked together in one vectorised pass (bounds the temporary memory).
_TUBE_CHECK_CHUNK = 65536
#: Frame-detection rows validated together (bounds the temporary memory).
_ROW_CHECK_CHUNK = 1 << 16
#: Integer dtypes tried, smallest first, for the compact index columns.
_INDEX_DTYPES = (np.int16, np.int32, np.int64)


def _as_float_array(array: np.ndarray) -> np.ndarray:
    """Keep float32/float64 as they are (their arithmetic matters); other numbers -> float64."""
    array = np.asarray(array)
    if array.dtype in EXACT_FLOAT_DTYPES:
        return array
    if array.dtype.kind not in 'biuf':
        raise TypeError(f'expected a numeric array, found dtype {array.dtype}')
    return array.astype(np.float64)


@dataclass
class GroundTruth:
    """The evaluated split of a MultiSports GT file as flat arrays.

    Attributes:
        labels: class names (C,).
        videos: test video names, ``test_videos[0]`` (V,).
        video_index: name -> position in ``videos``.
        nframes: ``(V,)`` int64 frame counts.
        resolution: ``(V, 2)`` float64 ``(height, width)``.
        evaluated: ``(C,)`` bool, classes the challenge evaluates.
        tubes: the T tubes as given (each ``(L, 5)`` float32 or float64).
        tube_video: ``(T,)`` int64 video index of each tube.
        tube_label: ``(T,)`` int64 label of each tube.
        tube_rank: ``(T,)`` int64 position of the tube when a video's tubes
            are listed label by label in the GT dict's order (error analysis).
        source: the file name, for messages.
    """

    labels: List[str]
    videos: List[str]
    video_index: Dict[str, int]
    nframes: np.ndarray
    resolution: np.ndarray
    evaluated: np.ndarray
    tubes: List[np.ndarray]
    tube_video: np.ndarray
    tube_label: np.ndarray
    tube_rank: np.ndarray
    source: str = '<ground truth>'

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    @property
    def num_videos(self) -> int:
        return len(self.videos)

    def num_gt_per_label(self) -> np.ndarray:
        """``(C,)`` number of GT tubes per label in the test videos."""
        return np.bincount(self.tube_label, minlength=self.num_labels)

    def num_boxes_per_label(self) -> np.ndarray:
        """``(C,)`` number of GT boxes (tube rows) per label."""
        lengths = np.array([len(tube) for tube in self.tubes], dtype=np.int64)
        return np.bincount(self.tube_label, weights=lengths, minlength=self.num_labels).astype(
            np.int64
        )

    @classmethod
    def from_dict(
        cls,
        gt: Mapping,
        source: str = '<ground truth>',
        excluded: Sequence[str] = EXCLUDED_CLASS_NAMES,
    ) -> 'GroundTruth':
        """Validate a GT dict and flatten its test split.

        Raises:
            KeyError / TypeError / ValueError: naming ``source``, the video,
                the label and the tube at fault.
        """
        check_gt_keys(gt, source, EVALUATION_GT_KEYS, 'frame-mAP / video-mAP evaluation')
        labels = list(gt['labels'])
        test_videos = gt['test_videos']
        if not isinstance(test_videos, (list, tuple)) or len(test_videos) == 0:
            raise ValueError(
                f"{source}: 'test_videos' must be a one-element list holding the list of "
                f'evaluated video names, found {type(test_videos).__name__}'
            )
        videos = [str(v) for v in test_videos[0]]
        video_index = {name: i for i, name in enumerate(videos)}
        if len(video_index) != len(videos):
            raise ValueError(f"{source}: 'test_videos'[0] lists a video twice")
        nframes = np.zeros(len(videos), dtype=np.int64)
        resolution = np.zeros((len(videos), 2), dtype=np.float64)
        tubes, tube_video, tube_label, tube_rank = [], [], [], []
        wheres = []  # each tube's name in messages
        for iv, name in enumerate(videos):
            for key in ('nframes', 'resolution', 'gttubes'):
                if name not in gt[key]:
                    raise KeyError(
                        f"{source}: test video {name!r} has no entry in '{key}'; every video "
                        "of 'test_videos'[0] needs 'nframes', 'resolution' and 'gttubes'"
                    )
            nframes[iv] = int(gt['nframes'][name])
            if nframes[iv] <= 0:
                raise ValueError(f'{source}: nframes[{name!r}] = {nframes[iv]} is not positive')
            res = np.asarray(gt['resolution'][name], dtype=np.float64).reshape(-1)
            if res.size != 2 or not np.all(res > 0):
                raise ValueError(
                    f'{source}: resolution[{name!r}] = {gt["resolution"][name]!r}; expected '
                    '(height, width) > 0'
                )
            resolution[iv] = res
            video_tubes = gt['gttubes'][name]
            if not isinstance(video_tubes, Mapping):
                raise TypeError(
                    f'{source}: gttubes[{name!r}] must be a dict label -> list of tubes, found '
                    f'{type(video_tubes).__name__}'
                )
            rank = 0
            for label, label_tubes in video_tubes.items():
                if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)):
                    raise TypeError(
                        f'{source}: gttubes[{name!r}] has the key {label!r}; keys are label indices'
                    )
                if not 0 <= int(label) < len(labels):
                    raise ValueError(
                        f'{source}: gttubes[{name!r}] has label {label}, out of range '
                        f'[0, {len(labels)}) of the {len(labels)} labels; a key of gttubes[video] '
                        "indexes 'labels' from 0"
                    )
                for it, tube in enumerate(label_tubes):
                    where = f'{source}: gttubes[{name!r}][{label}][{it}]'
                    tube = _check_tube(
                        tube, where, GT_TUBE_COLUMNS, exact_columns=True, check_values=False
                    )
                    wheres.append(where)
                    first, last = tube[0, 0], tube[-1, 0]
                    if first < 1 or last > nframes[iv]:
                        warnings.warn(
                            f'{where}: frames {first:g}..{last:g} extend beyond 1..{nframes[iv]} '
                            '(nframes); they are evaluated as given',
                            stacklevel=2,
                        )
                    tubes.append(tube)
                    tube_video.append(iv)
                    tube_label.append(int(label))
                    tube_rank.append(rank)
                    rank += 1
        _check_tubes_batch(tubes, wheres.__getitem__)  # finite, contiguous frames: vectorised
        evaluated = np.zeros(len(labels), dtype=bool)
        evaluated[evaluated_label_indices(labels, excluded)] = True
        return cls(
            labels=labels,
            videos=videos,
            video_index=video_index,
            nframes=nframes,
            resolution=resolution,
            evaluated=evaluated,
            tubes=tubes,
            tube_video=np.asarray(tube_video, dtype=np.int64),
            tube_label=np.asarray(tube_label, dtype=np.int64),
            tube_rank=np.asarray(tube_rank, dtype=np.int64),
            source=source,
        )


def _check_tube(
    tube, where: str, min_columns: int, exact_columns: bool = False, check_values: bool = True
) -> np.ndarray:
    """A tube as a float array with contiguous, increasing integer frames."""
    if not isinstance(tube, np.ndarray):
        raise TypeError(
            f'{where}: a tube must be a numpy array, found {type(tube).__name__}; save '
            'numpy.asarray(tube, dtype=numpy.float32) instead'
        )
    try:
        tube = _as_float_array(tube)
    except TypeError as exc:
        raise TypeError(f'{where}: {exc}') from None
    ok = tube.ndim == 2 and tube.shape[0] > 0
    if ok:
        ok = tube.shape[1] == min_columns if exact_columns else tube.shape[1] >= min_columns
    if not ok:
        want = f'{min_columns}' if exact_columns else f'at least {min_columns}'
        raise ValueError(
            f'{where}: a tube is an (L, {want}) array [frame, x1, y1, x2, y2, ...] with L >= 1, '
            f'found shape {tube.shape}'
        )
    if check_values:
        _check_tube_values(tube, where)
    return tube


def _check_tube_values(tube: np.ndarray, where: str) -> None:
    """Finite values and contiguous increasing integer frames, or a ValueError naming ``where``."""
    if not np.all(np.isfinite(tube)):
        row = int(np.flatnonzero(~np.all(np.isfinite(tube), axis=1))[0])
        raise ValueError(f'{where}: row {row} holds NaN or inf: {tube[row].tolist()}')
    frames = tube[:, 0]
    if np.any(frames != np.round(frames)):
        raise ValueError(f'{where}: frame numbers must be integers, found {frames.tolist()[:10]}')
    if tube.shape[0] > 1 and np.any(np.diff(frames) != 1):
        gap = int(np.flatnonzero(np.diff(frames) != 1)[0])
        raise ValueError(
            f'{where}: frames must be contiguous and increasing; frame {frames[gap]:g} is '
            f'followed by {frames[gap + 1]:g}'
        )


def _check_tubes_batch(tubes: List[np.ndarray], where_of) -> None:
    """Vectorised :func:`_check_tube_values` over many tubes; ``where_of(i)`` names tube i."""
    for begin in range(0, len(tubes), _TUBE_CHECK_CHUNK):
        part = tubes[begin : begin + _TUBE_CHECK_CHUNK]
        lengths = np.array([len(t) for t in part], dtype=np.int64)
        rows = np.concatenate([t[:, :DET_TUBE_MIN_COLUMNS] for t in part]).astype(np.float64)
        starts = np.cumsum(lengths) - lengths
        bad_row = ~np.all(np.isfinite(rows), axis=1) | (rows[:, 0] != np.round(rows[:, 0]))
        step = np.diff(rows[:, 0]) != 1
        step[starts[1:] - 1] = False  # (rows - 1,) a new tube may start anywhere
        bad_tube = np.zeros(len(part), dtype=bool)
        tube_of_row = np.repeat(np.arange(len(part)), lengths)
        bad_tube[tube_of_row[bad_row]] = True
        bad_tube[tube_of_row[:-1][step]] = True
        if bad_tube.any():
            i = int(np.flatnonzero(bad_tube)[0])
            _check_tube_values(part[i], where_of(begin + i))


def load_ground_truth(gt: Union[str, Mapping, GroundTruth]) -> GroundTruth:
    """A :class:`GroundTruth` from a file (restricted unpickler), a dict or itself."""
    if isinstance(gt, GroundTruth):
        return gt
    if isinstance(gt, str):
        return GroundTruth.from_dict(load_pickle(gt), source=gt)
    return GroundTruth.from_dict(gt)


def index_dtype(upper: int) -> np.dtype:
    """The smallest signed integer dtype holding ``0..upper``."""
    for dtype in _INDEX_DTYPES:
        if upper <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(f'{upper} does not fit in int64')


@dataclass
class FrameDetections:
    """Validated frame detections (official ``(M, 8)`` array) with compact integer columns.

    Attributes:
        array: ``(M, 8)`` the rows as given (float32 or float64; possibly
            read-only or memory-mapped).
        video: ``(M,)`` video index, the smallest integer dtype that holds
            the number of videos (cast to int64 before multiplying).
        frame: ``(M,)`` frame number, likewise compact.
        label: ``(M,)`` label, likewise compact.
    """

    array: np.ndarray
    video: np.ndarray
    frame: np.ndarray
    label: np.ndarray


def check_frame_detection_shape(detections, source: str = '<frame detections>') -> np.ndarray:
    """The ``(M, 8)`` array of frame detections; an empty list or array becomes ``(0, 8)``.

    Raises:
        TypeError: not a numpy array (a list of rows, say); the message says how to save one.
        ValueError: another shape; the message names ``source`` and the columns.
    """
    if isinstance(detections, (list, tuple)) and len(detections) == 0:
        detections = np.zeros((0, len(FRAME_DET_COLUMNS)))
    if not isinstance(detections, np.ndarray):
        raise TypeError(
            f'{source}: frame detections are an (M, 8) numpy array '
            f'[video_index, frame, label, score, x1, y1, x2, y2], found {type(detections).__name__}'
            '; save numpy.asarray(rows, dtype=numpy.float64) instead'
        )
    if detections.size == 0:
        detections = detections.reshape(0, len(FRAME_DET_COLUMNS))
    if detections.ndim != 2 or detections.shape[1] != len(FRAME_DET_COLUMNS):
        raise ValueError(
            f'{source}: frame detections must have shape (M, 8) '
            f'[video_index, frame, label, score, x1, y1, x2, y2], found {detections.shape}'
        )
    return detections


def check_frame_detections(
    detections, gt: GroundTruth, source: str = '<frame detections>'
) -> FrameDetections:
    """Validate an ``(M, 8)`` frame-detection array against the GT.

    Rows are checked in blocks of ``_ROW_CHECK_CHUNK`` so that the
    temporaries stay small; the array itself is not copied when it is
    float32 or float64.

    Raises:
        ValueError / TypeError: wrong shape, NaN/inf, non-integer or
            out-of-range video index, frame or label; the message names the
            file, the row and the problem.
    """
    detections = check_frame_detection_shape(detections, source)
    try:
        detections = _as_float_array(detections)
    except TypeError as exc:
        raise TypeError(f'{source}: {exc}') from None
    num = detections.shape[0]
    max_frames = int(gt.nframes.max()) if gt.num_videos else 1
    video = np.empty(num, dtype=index_dtype(gt.num_videos))
    frame = np.empty(num, dtype=index_dtype(max_frames))
    label = np.empty(num, dtype=index_dtype(gt.num_labels))
    for begin in range(0, num, _ROW_CHECK_CHUNK):
        stop = min(begin + _ROW_CHECK_CHUNK, num)
        _check_frame_rows(detections, begin, stop, gt, source, (video, frame, label))
    return FrameDetections(array=detections, video=video, frame=frame, label=label)


def _check_frame_rows(detections, begin: int, stop: int, gt: GroundTruth, source: str, out):
    """Check rows ``begin:stop`` and write their video, frame and label into ``out``.

    The block is transposed once so that every check runs on contiguous
    columns; the integer columns are cast straight to the compact dtypes of
    ``out``, and a value that the cast changes (a fraction, or out of the
    dtype's range) is reported as not an integer in range.
    """
    block = detections[begin:stop]  # (B, 8)
    columns = np.ascontiguousarray(block.T)  # (8, B)
    if not np.isfinite(columns).all():
        row = begin + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
        raise ValueError(
            f'{source}: row {row} holds NaN or inf: {detections[row].tolist()}; every value '
            'must be finite: drop or fix the rows of the model output that gave it'
        )
    video_out, frame_out, label_out = out
    ints = []
    checks = (
        (0, 'video index', gt.num_videos, video_out, VIDEO_INDEX_HINT),
        (2, 'label', gt.num_labels, label_out, LABEL_HINT),
    )
    for column, name, upper, target, hint in checks:
        values = columns[column]
        with np.errstate(invalid='ignore'):  # out-of-range casts are caught just below
            as_int = values.astype(target.dtype)
        bad = (as_int != values) | (as_int < 0) | (as_int >= upper)
        if bad.any():
            row = begin + int(np.flatnonzero(bad)[0])
            raise ValueError(
                f'{source}: row {row}: {name} {detections[row, column]:g} is not an integer in '
                f'[0, {upper}) ({detections[row].tolist()}); {hint.format(gt=gt.source)}'
            )
        ints.append(as_int)
    video, label = ints
    frames = columns[1]
    with np.errstate(invalid='ignore'):
        frame = frames.astype(frame_out.dtype)
    bad = (frame != frames) | (frame < 1) | (frame > gt.nframes[video])
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        row = begin + first
        raise ValueError(
            f'{source}: row {row}: frame {frames[first]:g} is not an integer in '
            f'[1, {gt.nframes[video[first]]}] (nframes of {gt.videos[video[first]]!r}); frames '
            'count from 1, as in the GT tubes'
        )
    video_out[begin:stop] = video
    frame_out[begin:stop] = frame
    label_out[begin:stop] = label


@dataclass
class VideoDetections:
    """Validated video detections flattened over labels.

    Attributes:
        label: ``(D,)`` int64 label of each detection.
        video: ``(D,)`` int64 video index.
        position: ``(D,)`` int64 index of the detection in its label's list.
        tubes: the D tubes (each ``(L, >=5)`` float32/float64).
        scores_by_label: label -> ``np.array`` of the tube scores of that
            label's list, built exactly as the official tool builds it (its
            dtype decides how ties sort).
    """

    label: np.ndarray
    video: np.ndarray
    position: np.ndarray
    tubes: List[np.ndarray]
    scores_by_label: Dict[int, np.ndarray]


def check_video_detections(
    detections: Mapping, gt: GroundTruth, source: str = '<video detections>'
) -> VideoDetections:
    """Validate ``{label: [(video_name, tube_score, tube), ...]}``.

    Labels absent from the dict have no detections.

    Raises:
        TypeError / ValueError / KeyError: naming the file, label, entry and problem.
    """
    if not isinstance(detections, Mapping):
        raise TypeError(
            f'{source}: video detections are a dict label -> list of (video_name, tube_score, '
            f'tube), found {type(detections).__name__}'
        )
    labels, videos, positions, tubes = [], [], [], []
    scores_by_label: Dict[int, np.ndarray] = {}
    for label, entries in detections.items():
        if isinstance(label, (bool, np.bool_)) or not isinstance(label, (int, np.integer)):
            raise TypeError(f'{source}: key {label!r} is not a label index')
        if not 0 <= int(label) < gt.num_labels:
            raise ValueError(
                f'{source}: label {label} is out of range [0, {gt.num_labels}) of the GT labels'
            )
        label = int(label)
        scores = []
        for i, entry in enumerate(entries):
            where = f'{source}: label {label}, entry {i}'
            if not isinstance(entry, (tuple, list)) or len(entry) != 3:
                raise ValueError(
                    f'{where}: expected (video_name, tube_score, tube), found {entry!r}'
                )
            name, score, tube = entry
            if name not in gt.video_index:
                raise KeyError(f'{where}: video {name!r} is not in the GT test_videos[0]')
            if not np.isfinite(score):
                raise ValueError(f'{where}: tube score {score!r} is not finite')
            tubes.append(_check_tube(tube, where, DET_TUBE_MIN_COLUMNS, check_values=False))
            scores.append(score)
            labels.append(label)
            videos.append(gt.video_index[name])
            positions.append(i)
        scores_by_label[label] = np.array(scores)
    label_arr = np.asarray(labels, dtype=np.int64)
    position_arr = np.asarray(positions, dtype=np.int64)
    _check_tubes_batch(tubes, lambda i: f'{source}: label {label_arr[i]}, entry {position_arr[i]}')
    return VideoDetections(
        label=label_arr,
        video=np.asarray(videos, dtype=np.int64),
        position=position_arr,
        tubes=tubes,
        scores_by_label=scores_by_label,
    )


def load_detections(detections, description: str = 'detections') -> Tuple[object, str]:
    """Load detections from a path (restricted unpickler) or pass objects through."""
    if isinstance(detections, str):
        return load_pickle(detections), detections
    return detections, f'<{description}>'


def _bytes_as_buffer(data=b'', *args):
    """``bytearray`` for the lean reader: an unpickled ``bytes`` object is used as it is.

    :func:`pcca_plugin.utils.pickle_io.dump_pickle` stores an array as
    ``numpy.ndarray(shape, dtype, bytearray(data))``; building the bytearray
    would copy the data once more. Other calls behave as ``bytearray``.
    """
    if isinstance(data, bytes) and not args:
        return data
    return bytearray(data, *args)


class _LeanUnpickler(_RestrictedUnpickler):
    """The restricted unpickler, with arrays built on the unpickled bytes (read-only)."""

    def find_class(self, module: str, name: str):
        if module == 'builtins' and name == 'bytearray':
            return _bytes_as_buffer
        return super().find_class(module, name)


def load_frame_detections(detections) -> Tuple[object, str]:
    """Frame detections from a path, with as few copies as possible, or objects as given.

    * ``*.npy``: memory-mapped read-only (``np.load(mmap_mode='r')``, no
      pickled objects allowed);
    * anything else: a pickle, read with the restricted unpickler of
      :mod:`pcca_plugin.utils.pickle_io` straight from the file, the array
      keeping the unpickled bytes as its read-only buffer (one copy of the
      data in memory instead of three).

    Returns:
        ``(detections, source)``; ``source`` names the file in messages.

    Raises:
        FileNotFoundError: the file does not exist.
        UnsafePickleError: the pickle names a non-data global.
        pickle.UnpicklingError / ValueError: the file is not readable; the
            message names it and says to re-create it.
    """
    if not isinstance(detections, (str, os.PathLike)):
        return detections, '<frame detections>'
    path = os.fspath(detections)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such file')
    if path.endswith('.npy'):
        try:
            return np.load(path, mmap_mode='r', allow_pickle=False), path
        except ValueError as exc:
            raise ValueError(
                f'{path}: not a readable .npy array of frame detections ({exc}); re-save the '
                '(M, 8) float array with numpy.save'
            ) from exc
    with open(path, 'rb') as f:
        return unpickle_frame_detections(f, path), path


def unpickle_frame_detections(file, source: str):
    """Unpickle frame detections from an open binary stream with as few copies as possible.

    The restricted unpickler of :mod:`pcca_plugin.utils.pickle_io`, reading
    straight from ``file`` (a buffered file or a zip member: it is peeked at),
    the array keeping the unpickled bytes as its read-only buffer; a
    protocol-2 pickle (the 2021 server's, whose array bytes are latin-1 text)
    is decoded chunk by chunk into the array's own buffer
    (:func:`~pcca_plugin.utils.pickle_io.unpickle_text_arrays`).

    Raises:
        UnsafePickleError: the pickle names a non-data global.
        pickle.UnpicklingError: not a readable pickle (the message names ``source``).
    """
    if is_text_bytes_pickle(file.peek(PICKLE_HEAD_BYTES)):
        return unpickle_text_arrays(file, source)  # protocol 2: the bytes travel as text
    return run_unpickler(_LeanUnpickler(file, source=source), source)
