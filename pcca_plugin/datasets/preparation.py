"""Turn MultiSports ground truth and person boxes into the files that training/testing read.

This is the logic behind ``tools/data/multisports/prepare_multisports.py`` (a thin CLI)
and behind the toy-sports generator, so real and generated data take the same path.

Inputs (the official MultiSports release, see ``docs/data.md``):

* ``multisports_GT.pkl``: ``labels``, ``train_videos``, ``test_videos``, ``nframes``,
  ``resolution``, ``gttubes`` (tubes ``(L, 5)``: ``[frame, x1, y1, x2, y2]`` in pixels).
* person boxes: ``{'<video>,<frame>': (n, 5) float}``, normalised
  ``[x1, y1, x2, y2, score]``, one or several pickles.

Outputs (``<name>`` defaults to ``multisports``):

* ``<name>_{train,val}.pkl``: one *frame annotation* dict per split (layout below).
* ``<name>_dense_proposals_{train,val}.pkl``: the person boxes of that split's videos,
  float32 ``(n, 5)`` per frame key, validated.

The challenge's test split has no GT. :func:`prepare_multisports_test` builds
``<name>_test.pkl`` and ``<name>_dense_proposals_test.pkl`` from the videos
alone: each video is decoded to read its frame count and resolution, every
frame is a key frame, there are no labels, and the person boxes come from the
given proposal files (e.g. ``tools/det/generate_proposals.py`` output).

Frame annotation layout (:data:`ANNOTATION_FORMAT`, version :data:`ANNOTATION_VERSION`)::

    {
        'format': 'pcca_plugin.multisports_frames', 'version': 1,
        'split': 'train' | 'val' | 'test',
        'labels': [class names] (None for a test split prepared without a GT file),
        'gt_file': path of the GT pickle it was made from (test split: the video root),
        'frame_stride': int,
        'videos': {video: {'nframes': int, 'resolution': (h, w),
                           'keyframes': int32 (F,) 1-based frames to iterate}},
        'annotations': {frame_key: {'bboxes': float32 (K, 4) normalised [x1, y1, x2, y2],
                                    'labels': uint8 (K, num_classes) multi-hot}}
                       (empty for the test split),
    }

Unlike mmaction2's MultiSports conversion (one CSV row per annotated box), the
validation split lists **every** frame of every validation video (optionally
every ``frame_stride``-th): the official protocol counts a detection on a frame
without actions as a false positive, so evaluating only annotated frames
inflates frame-mAP.

Decoding a video (frame count, size, JPEG frames) lives in
:mod:`pcca_plugin.datasets.video_decoding`; its names are re-exported here for
the preparation tool.
"""

import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import MMLogger
from mmengine.utils import track_iter_progress

from pcca_plugin.evaluation.functional import box_iou
from pcca_plugin.utils.multisports_format import (
    FIRST_FRAME,
    TRAINING_PREPARATION_GT_KEYS,
    check_gt_keys,
    frame_key,
    parse_frame_key,
)
from pcca_plugin.utils.pickle_io import dump_pickle, load_pickle

from .video_decoding import FrameCountError, VideoProbe, decode_video, extract_frames

#: ``format`` field of a frame annotation file.
ANNOTATION_FORMAT = 'pcca_plugin.multisports_frames'
#: ``version`` field of a frame annotation file.
ANNOTATION_VERSION = 1
#: The two splits and the GT field holding each one's video list.
SPLIT_GT_FIELDS = OrderedDict([('train', 'train_videos'), ('val', 'test_videos')])
#: The challenge test split: videos without GT, prepared from the videos alone.
TEST_SPLIT = 'test'
#: Which frames of a training video become key frames.
TRAIN_FRAME_MODES = ('annotated', 'all')
#: Boxes of two tubes on one frame with at least this IoU are one person with two labels.
DEFAULT_DUPLICATE_IOU = 0.95
#: Columns of a person-box row: x1, y1, x2, y2, score.
PROPOSAL_COLUMNS = 5
#: Columns of a GT tube row: frame, x1, y1, x2, y2.
TUBE_COLUMNS = 5


def split_video_names(gt: Dict, split: str, source: str = 'GT') -> List[str]:
    """Video names of ``split`` ('train' or 'val'); MultiSports nests them in a 1-list."""
    if split not in SPLIT_GT_FIELDS:
        raise ValueError(f'unknown split {split!r}; use one of {list(SPLIT_GT_FIELDS)}')
    field = SPLIT_GT_FIELDS[split]
    check_gt_keys(gt, source, (field,), f'listing the {split} videos')
    videos = gt[field]
    if len(videos) != 1 or not isinstance(videos[0], (list, tuple)):
        raise ValueError(
            f'{source}: {field!r} must be a one-element list holding the list of video '
            f'names (the MultiSports layout), found {type(videos).__name__} of length '
            f'{len(videos)}'
        )
    return list(videos[0])


def validate_gt(gt: Dict, source: str) -> None:
    """Check a MultiSports GT dict; raise with the file, video, label and tube at fault.

    Checks: required keys; every split video has ``nframes`` and ``resolution``;
    every tube is an ``(L, 5)`` array whose frames are increasing, contiguous and
    inside ``[1, nframes]``, whose label indexes ``labels`` and whose boxes have
    ``x1 <= x2``, ``y1 <= y2``.
    """
    check_gt_keys(gt, source, TRAINING_PREPARATION_GT_KEYS, 'training-data preparation')
    num_classes = len(gt['labels'])
    for split in SPLIT_GT_FIELDS:
        for video in split_video_names(gt, split, source):
            for field in ('nframes', 'resolution'):
                if video not in gt[field]:
                    raise KeyError(
                        f'{source}: video {video!r} of the {split} split has no '
                        f'{field!r} entry; add it to the GT file'
                    )
    for video, tubes_by_label in gt['gttubes'].items():
        if video not in gt['nframes']:
            raise KeyError(f"{source}: gttubes has video {video!r} that 'nframes' lacks")
        nframes = int(gt['nframes'][video])
        for label, tubes in tubes_by_label.items():
            if not 0 <= int(label) < num_classes:
                raise ValueError(
                    f'{source}: video {video!r} has tubes of label {label}, outside '
                    f'[0, {num_classes}) (the file has {num_classes} labels)'
                )
            for index, tube in enumerate(tubes):
                _validate_tube(
                    np.asarray(tube),
                    nframes,
                    f'{source}: video {video!r}, label {label}, tube {index}',
                )


def _validate_tube(tube: np.ndarray, nframes: int, where: str) -> None:
    if tube.ndim != 2 or tube.shape[1] != TUBE_COLUMNS or len(tube) == 0:
        raise ValueError(
            f'{where}: a tube is a non-empty (L, 5) array [frame, x1, y1, x2, '
            f'y2], found shape {tube.shape}'
        )
    frames = tube[:, 0]
    if frames.min() < FIRST_FRAME or frames.max() > nframes:
        raise ValueError(
            f'{where}: frames {int(frames.min())}..{int(frames.max())} fall outside the '
            f'video (frames {FIRST_FRAME}..{nframes} per nframes); fix the tube or nframes'
        )
    if np.any(np.diff(frames) != 1):
        raise ValueError(
            f'{where}: frames must be contiguous and increasing, found '
            f'{frames.astype(int).tolist()}'
        )
    if np.any(tube[:, 3] < tube[:, 1]) or np.any(tube[:, 4] < tube[:, 2]):
        raise ValueError(f'{where}: a box has x2 < x1 or y2 < y1')


def video_frame_annotations(
    tubes_by_label: Dict,
    resolution: Tuple[int, int],
    num_classes: int,
    duplicate_iou: float = DEFAULT_DUPLICATE_IOU,
) -> Dict[int, Dict]:
    """Per-frame boxes and multi-hot labels of one video.

    Boxes of different tubes on the same frame whose IoU is at least
    ``duplicate_iou`` are taken to be one person doing two actions and merged
    into one box with two labels (MultiSports tubes carry no person id).

    Args:
        tubes_by_label: ``{label: [tube (L, 5)]}`` from ``gttubes[video]``.
        resolution: ``(height, width)`` of the video, to normalise boxes.
        num_classes: length of the multi-hot label vectors.
        duplicate_iou: IoU above which two boxes are one person.

    Returns:
        ``{frame: {'bboxes': float32 (K, 4) normalised, 'labels': uint8 (K, C)}}``.
    """
    height, width = (float(v) for v in resolution)
    scale = np.array([width, height, width, height])
    per_frame: Dict[int, List[Tuple[np.ndarray, int]]] = {}
    for label in sorted(tubes_by_label):
        for tube in tubes_by_label[label]:
            for row in np.asarray(tube, dtype=np.float64):
                per_frame.setdefault(int(row[0]), []).append((row[1:5] / scale, int(label)))
    result = {}
    for frame in sorted(per_frame):
        boxes: List[np.ndarray] = []
        labels: List[np.ndarray] = []
        for box, label in per_frame[frame]:
            if boxes:
                ious = box_iou(box[None], np.stack(boxes), empty_union=0.0)[0]  # (K,)
                best = int(np.argmax(ious))
                if ious[best] >= duplicate_iou:
                    labels[best][label] = 1
                    continue
            boxes.append(box)
            multi_hot = np.zeros(num_classes, dtype=np.uint8)
            multi_hot[label] = 1
            labels.append(multi_hot)
        result[frame] = dict(
            bboxes=np.clip(np.stack(boxes), 0, 1).astype(np.float32), labels=np.stack(labels)
        )
    return result


def build_split_annotation(
    gt: Dict,
    split: str,
    gt_file: str = '',
    frame_stride: int = 1,
    train_frames: str = 'annotated',
    duplicate_iou: float = DEFAULT_DUPLICATE_IOU,
) -> Dict:
    """Frame annotation dict of one split (layout in the module docstring).

    Args:
        gt: a validated MultiSports GT dict.
        split: 'train' (``train_videos``) or 'val' (``test_videos``).
        gt_file: recorded in the output for provenance.
        frame_stride: keep every ``frame_stride``-th frame (frames 1, 1+s, ...) of
            the frames iterated.
        train_frames: for 'train', iterate the 'annotated' frames (mmaction2's
            choice) or 'all' frames. The 'val' split always iterates all frames.
        duplicate_iou: see :func:`video_frame_annotations`.
    """
    if frame_stride < 1:
        raise ValueError(f'frame_stride must be >= 1, got {frame_stride}')
    if train_frames not in TRAIN_FRAME_MODES:
        raise ValueError(f'train_frames must be one of {TRAIN_FRAME_MODES}, got {train_frames!r}')
    num_classes = len(gt['labels'])
    videos = OrderedDict()
    annotations = {}
    for video in split_video_names(gt, split):
        nframes = int(gt['nframes'][video])
        resolution = tuple(int(v) for v in gt['resolution'][video])
        frame_anns = video_frame_annotations(
            gt['gttubes'].get(video, {}), resolution, num_classes, duplicate_iou
        )
        for frame, ann in frame_anns.items():
            annotations[frame_key(video, frame)] = ann
        if split == 'train' and train_frames == 'annotated':
            candidates = np.array(sorted(frame_anns), dtype=np.int32)
        else:
            candidates = np.arange(FIRST_FRAME, nframes + 1, dtype=np.int32)
        keyframes = candidates[(candidates - FIRST_FRAME) % frame_stride == 0]
        videos[video] = dict(nframes=nframes, resolution=resolution, keyframes=keyframes)
    return dict(
        format=ANNOTATION_FORMAT,
        version=ANNOTATION_VERSION,
        split=split,
        labels=list(gt['labels']),
        gt_file=gt_file,
        frame_stride=int(frame_stride),
        videos=videos,
        annotations=annotations,
    )


def check_proposal_array(boxes, key: str, source: str) -> np.ndarray:
    """Validate one frame's person boxes; return float32 ``(n, 5)``."""
    array = np.asarray(boxes, dtype=np.float32)
    if array.size == 0:
        return np.zeros((0, PROPOSAL_COLUMNS), dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != PROPOSAL_COLUMNS:
        raise ValueError(
            f'{source}: key {key!r} holds shape {array.shape}; person boxes are '
            '(n, 5) normalised [x1, y1, x2, y2, score]'
        )
    if not np.isfinite(array).all() or array[:, :4].min() < 0 or array[:, :4].max() > 1:
        raise ValueError(
            f'{source}: key {key!r} has boxes outside [0, 1]; person boxes must '
            'be normalised by the frame width/height'
        )
    return array


def split_proposals(
    proposals: Dict, gt: Dict, videos: Iterable[str], source: str = 'proposals'
) -> Dict[str, np.ndarray]:
    """Person boxes of ``videos``, validated against the GT.

    Every key must name a GT video (any split) and a frame inside it; keys of
    videos outside ``videos`` (another split) are left out.

    Raises:
        KeyError: a key names a video the GT does not have.
        ValueError: a malformed key, a frame outside the video, a bad array.
    """
    wanted = set(videos)
    result = {}
    for key, boxes in proposals.items():
        video, frame = parse_frame_key(key)
        if video not in gt['nframes']:
            raise KeyError(
                f'{source}: key {key!r} names video {video!r}, which the GT file does not '
                "have. Keys are '<sport>/<video>,<frame>' exactly as GT video names; "
                'check that the person boxes belong to this dataset'
            )
        nframes = int(gt['nframes'][video])
        if not FIRST_FRAME <= frame <= nframes:
            raise ValueError(
                f'{source}: key {key!r} is frame {frame}, outside video {video!r} '
                f'(frames {FIRST_FRAME}..{nframes})'
            )
        if video in wanted:
            result[frame_key(video, frame)] = check_proposal_array(boxes, key, source)
    return result


def load_proposal_files(paths: Sequence[str]) -> Dict[str, np.ndarray]:
    """Merge several person-box pickles; a key present in two files is an error."""
    merged: Dict[str, np.ndarray] = {}
    for path in paths:
        data = load_pickle(path)
        if not isinstance(data, dict):
            raise TypeError(
                f'{path}: person boxes are a dict frame key -> (n, 5) array, '
                f'found {type(data).__name__}'
            )
        for key, value in data.items():
            if key in merged:
                raise KeyError(f'{path}: key {key!r} also appears in an earlier proposal file')
            merged[key] = value
    return merged


def prepare_multisports(
    gt_file: str,
    proposal_files: Sequence[str],
    out_dir: str,
    name: str = 'multisports',
    frame_stride: int = 1,
    train_frames: str = 'annotated',
    duplicate_iou: float = DEFAULT_DUPLICATE_IOU,
    logger: Optional[MMLogger] = None,
) -> Dict[str, str]:
    """Write ``<name>_{train,val}.pkl`` and ``<name>_dense_proposals_{train,val}.pkl``.

    Args:
        gt_file: ``multisports_GT.pkl`` (or a file of the same format).
        proposal_files: person-box pickles (e.g. the official train and val ones).
        out_dir: output folder (created).
        name: prefix of the output files.
        frame_stride: evaluate/train on every ``frame_stride``-th frame.
        train_frames: 'annotated' or 'all' (see :func:`build_split_annotation`).
        duplicate_iou: see :func:`video_frame_annotations`.
        logger: where to report counts (default: the current MMLogger).

    Returns:
        ``{'train': path, 'val': path, 'proposals_train': path, 'proposals_val': path}``.
    """
    logger = logger or MMLogger.get_current_instance()
    gt = load_pickle(gt_file)
    validate_gt(gt, gt_file)
    proposals = load_proposal_files(proposal_files)
    source = ', '.join(proposal_files)
    os.makedirs(out_dir, exist_ok=True)
    written = {}
    for split in SPLIT_GT_FIELDS:
        annotation = build_split_annotation(
            gt,
            split,
            gt_file=gt_file,
            frame_stride=frame_stride,
            train_frames=train_frames,
            duplicate_iou=duplicate_iou,
        )
        split_boxes = split_proposals(proposals, gt, annotation['videos'], source)
        num_keyframes = sum(len(v['keyframes']) for v in annotation['videos'].values())
        missing = [
            frame_key(video, frame)
            for video, info in annotation['videos'].items()
            for frame in info['keyframes']
            if len(split_boxes.get(frame_key(video, frame), ())) == 0
        ]
        if missing:
            logger.warning(
                f'{split}: {len(missing)} of {num_keyframes} key frames have no '
                f'person boxes (e.g. {missing[:3]}); the dataset handles them by '
                'its empty_proposal_policy'
            )
        ann_path = osp.join(out_dir, f'{name}_{split}.pkl')
        proposal_path = osp.join(out_dir, f'{name}_dense_proposals_{split}.pkl')
        dump_pickle(annotation, ann_path)
        dump_pickle(split_boxes, proposal_path)
        logger.info(
            f'{split}: {len(annotation["videos"])} videos, {num_keyframes} key frames, '
            f'{len(annotation["annotations"])} annotated frames -> {ann_path}, '
            f'{proposal_path}'
        )
        written[split] = ann_path
        written[f'proposals_{split}'] = proposal_path
    return written


# ---------------------------------------------------------------- test split (no GT)


def find_videos(video_root: str, video_suffix: str = '.mp4') -> List[str]:
    """Names of the videos under ``video_root``: ``<sport>/<video>`` without the suffix, sorted.

    Raises:
        FileNotFoundError: the folder does not exist or holds no ``*<video_suffix>`` file.
    """
    if not osp.isdir(video_root):
        raise FileNotFoundError(f'{video_root}: no such video folder (--video-root)')
    names = []
    for folder, _, files in os.walk(video_root):
        for name in files:
            if name.endswith(video_suffix) and not name.startswith('.'):
                rel = osp.relpath(osp.join(folder, name), video_root)
                names.append(rel[: -len(video_suffix)].replace(os.sep, '/'))
    if not names:
        raise FileNotFoundError(
            f'{video_root}: no *{video_suffix} video under this folder; check --video-root '
            'and --video-suffix'
        )
    return sorted(names)


def read_video_list(path: str) -> List[str]:
    """Video names from a text file, one per line, in order (blank and ``#`` lines skipped).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file names a video twice or names none.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such video list (--video-list)')
    with open(path) as f:
        names = [line.strip() for line in f]
    names = [name for name in names if name and not name.startswith('#')]
    if not names:
        raise ValueError(f'{path}: the video list names no video')
    seen = set()
    for line, name in enumerate(names):
        if name in seen:
            raise ValueError(f'{path}: video {name!r} is listed twice (entry {line + 1})')
        seen.add(name)
    return names


def build_test_annotation(
    videos: 'OrderedDict[str, VideoProbe]',
    labels: Optional[Sequence[str]] = None,
    frame_stride: int = 1,
    source: str = '',
) -> Dict:
    """Frame annotation dict of the test split (layout in the module docstring), without GT.

    Every frame is a key frame (every ``frame_stride``-th from frame 1);
    ``annotations`` is empty; ``labels`` is the model's class list when given
    (from a GT file of the same dataset), else None.

    Args:
        videos: name -> :class:`VideoProbe`, in the order the submission indexes them.
        labels: class names, or None.
        frame_stride: keep frames ``1, 1 + s, ...``.
        source: recorded as ``gt_file`` (where the videos came from).
    """
    if frame_stride < 1:
        raise ValueError(f'frame_stride must be >= 1, got {frame_stride}')
    entries = OrderedDict()
    for video, probe in videos.items():
        frames = np.arange(FIRST_FRAME, probe.nframes + 1, dtype=np.int32)
        entries[video] = dict(
            nframes=int(probe.nframes),
            resolution=probe.resolution,
            keyframes=frames[(frames - FIRST_FRAME) % frame_stride == 0],
        )
    return dict(
        format=ANNOTATION_FORMAT,
        version=ANNOTATION_VERSION,
        split=TEST_SPLIT,
        labels=None if labels is None else list(labels),
        gt_file=source,
        frame_stride=int(frame_stride),
        videos=entries,
        annotations={},
    )


def check_test_proposal_videos(proposals: Dict, videos: Sequence[str], source: str) -> None:
    """Every proposal key names a test video and every test video has at least one person box.

    Raises:
        KeyError: a key names a video that is not in the test split.
        ValueError: test videos without any person box (named, with the fix).
    """
    wanted = set(videos)
    with_boxes = set()
    for key, boxes in proposals.items():
        video, _ = parse_frame_key(key)
        if video not in wanted:
            raise KeyError(
                f'{source}: key {key!r} names video {video!r}, which is not a test video '
                f'({len(wanted)} videos, e.g. {sorted(wanted)[:2]}). Keys are '
                "'<sport>/<video>,<frame>' with the video's path under --video-root"
            )
        if len(np.asarray(boxes)):
            with_boxes.add(video)
    without = [video for video in videos if video not in with_boxes]
    if without:
        raise ValueError(
            f'{source}: {len(without)} of {len(wanted)} test videos have no person box, e.g. '
            f'{without[:3]}; a video without boxes gets no detection. Run '
            'tools/det/generate_proposals.py on these videos and pass its output with --proposals'
        )


def prepare_multisports_test(
    video_root: str,
    proposal_files: Sequence[str],
    out_dir: str,
    name: str = 'multisports',
    video_suffix: str = '.mp4',
    video_list: Optional[str] = None,
    labels_from: Optional[str] = None,
    frame_root: Optional[str] = None,
    frame_stride: int = 1,
    logger: Optional[MMLogger] = None,
) -> Dict[str, str]:
    """Write ``<name>_test.pkl`` and ``<name>_dense_proposals_test.pkl`` from the videos alone.

    Every video is decoded once (and its frames saved when ``frame_root`` is
    given) to read its frame count and resolution. Nothing is written before
    every check passed: unknown videos in the proposals, a video without any
    person box, a missing video and a frame count that differs from the
    container's are errors naming the item.

    Args:
        video_root: folder of ``<sport>/<video><video_suffix>``.
        proposal_files: person-box pickles ``{'<video>,<frame>': (n, 5)}`` (e.g.
            ``tools/det/generate_proposals.py`` output).
        out_dir: output folder (created).
        name: prefix of the output files.
        video_suffix: file suffix of the videos.
        video_list: text file ordering the videos (the order the submission's
            ``video_index`` follows); None: every video under ``video_root``, sorted.
        labels_from: a GT pickle of the same dataset whose ``labels`` (class
            names) are recorded; None records no class names.
        frame_root: also save every frame as ``frame_root/<video>/img_00001.jpg``.
        frame_stride: key frames ``1, 1 + s, ...`` (1: every frame).
        logger: where to report counts (default: the current MMLogger).

    Returns:
        ``{'test': path, 'proposals_test': path}``.
    """
    logger = logger or MMLogger.get_current_instance()
    if frame_stride < 1:
        raise ValueError(f'frame_stride must be >= 1, got {frame_stride}')
    names = read_video_list(video_list) if video_list else find_videos(video_root, video_suffix)
    paths = [osp.join(video_root, video + video_suffix) for video in names]
    missing = [path for path in paths if not osp.isfile(path)]
    if missing:
        raise FileNotFoundError(
            f'{len(missing)} of {len(names)} test videos are missing under {video_root}, '
            f'e.g. {missing[:3]}'
        )
    labels = None
    if labels_from:
        gt = load_pickle(labels_from)
        if not isinstance(gt, dict) or 'labels' not in gt:
            raise KeyError(
                f"{labels_from}: the class names come from the 'labels' key of a MultiSports "
                'GT file, which this file lacks'
            )
        labels = list(gt['labels'])
    proposals = load_proposal_files(proposal_files)
    source = ', '.join(proposal_files)
    check_test_proposal_videos(proposals, names, source)
    probes = OrderedDict()
    for video, path in zip(names, track_iter_progress(paths) if len(paths) > 1 else paths):
        frame_dir = osp.join(frame_root, video) if frame_root else None
        probes[video] = decode_video(path, frame_dir)
    annotation = build_test_annotation(probes, labels, frame_stride, source=video_root)
    split_boxes = {}
    for key, boxes in proposals.items():
        video, frame = parse_frame_key(key)
        nframes = probes[video].nframes
        if not FIRST_FRAME <= frame <= nframes:
            raise ValueError(
                f'{source}: key {key!r} is frame {frame}, outside video {video!r} '
                f'(frames {FIRST_FRAME}..{nframes} decoded from {osp.join(video_root, video)}'
                f'{video_suffix})'
            )
        split_boxes[frame_key(video, frame)] = check_proposal_array(boxes, key, source)
    num_keyframes = sum(len(v['keyframes']) for v in annotation['videos'].values())
    empty = sum(
        1
        for video, info in annotation['videos'].items()
        for frame in info['keyframes']
        if len(split_boxes.get(frame_key(video, frame), ())) == 0
    )
    if empty:
        logger.warning(
            f'test: {empty} of {num_keyframes} key frames have no person boxes; the dataset '
            'handles them by its empty_proposal_policy'
        )
    os.makedirs(out_dir, exist_ok=True)
    ann_path = osp.join(out_dir, f'{name}_{TEST_SPLIT}.pkl')
    proposal_path = osp.join(out_dir, f'{name}_dense_proposals_{TEST_SPLIT}.pkl')
    dump_pickle(annotation, ann_path)
    dump_pickle(split_boxes, proposal_path)
    logger.info(
        f'test: {len(probes)} videos, {num_keyframes} key frames -> {ann_path}, {proposal_path}'
    )
    return {TEST_SPLIT: ann_path, f'proposals_{TEST_SPLIT}': proposal_path}


def check_or_extract_videos(
    gt_file: str,
    video_root: str,
    video_suffix: str = '.mp4',
    frame_root: Optional[str] = None,
    count_frames: bool = False,
) -> None:
    """Check that every GT video exists under ``video_root``; decode it when extracting or counting.

    Args:
        gt_file: the MultiSports GT pickle (its train and val videos are checked).
        video_root: the folder of ``<sport>/<video><video_suffix>``.
        video_suffix: the videos' file suffix.
        frame_root: when given, every video is decoded into ``frame_root/<video>/img_00001.jpg``...
        count_frames: decode every video (without saving) to check its frame count.

    A decoded frame count that differs from the GT ``nframes`` is an error
    naming the video (:class:`FrameCountError`); frame folders are written
    whole or not at all.
    """
    gt = load_pickle(gt_file)
    videos = [v for split in SPLIT_GT_FIELDS for v in split_video_names(gt, split, gt_file)]
    missing = [v for v in videos if not osp.isfile(osp.join(video_root, v + video_suffix))]
    if missing:
        raise FileNotFoundError(
            f'{len(missing)} of {len(videos)} videos of {gt_file} are missing under '
            f'{video_root}, e.g. {[osp.join(video_root, v + video_suffix) for v in missing[:3]]}'
        )
    if frame_root is None and not count_frames:
        return
    for video in track_iter_progress(videos):
        decode_video(
            osp.join(video_root, video + video_suffix),
            osp.join(frame_root, video) if frame_root else None,
            expected_frames=int(gt['nframes'][video]),
        )


__all__ = [
    'ANNOTATION_FORMAT',
    'ANNOTATION_VERSION',
    'DEFAULT_DUPLICATE_IOU',
    'PROPOSAL_COLUMNS',
    'SPLIT_GT_FIELDS',
    'TEST_SPLIT',
    'TRAIN_FRAME_MODES',
    'TUBE_COLUMNS',
    'FrameCountError',
    'VideoProbe',
    'build_split_annotation',
    'build_test_annotation',
    'check_or_extract_videos',
    'check_proposal_array',
    'check_test_proposal_videos',
    'decode_video',
    'extract_frames',
    'find_videos',
    'load_proposal_files',
    'prepare_multisports',
    'prepare_multisports_test',
    'read_video_list',
    'split_proposals',
    'split_video_names',
    'validate_gt',
    'video_frame_annotations',
]
