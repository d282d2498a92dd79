"""Resumable proposal generation: detector over videos, one shard per video, then a merge.

The loop (:func:`generate_shards`) visits the videos in order. A video whose
shard exists and is valid is skipped; otherwise its frames (every k-th) are
read, run through the detector in batches that never span two videos (so
the boxes of a video do not depend on where a previous run stopped), and
written as a shard atomically. :func:`merge_shards` then reads every shard
back into one dict, so an interrupted-and-resumed run and an uninterrupted
run produce the same file byte for byte. :func:`generate_proposal_file` does
both for one part of the videos (``tools/det/generate_proposals.py``).
"""

import logging
import os.path as osp
from typing import Callable, Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..utils.multisports_format import frame_key
from ..utils.pickle_io import dump_pickle, load_pickle
from .frames import (
    FrameSource,
    estimate_num_frames,
    iter_frames,
    resolve_sources,
    sources_from_paths,
)
from .ground_truth import split_videos
from .shards import (
    CorruptShardError,
    merge_shards,
    read_shard,
    remove_stale_temporaries,
    shard_path,
    write_shard,
)

logger = logging.getLogger(__name__)

#: Frames per detector call.
DEFAULT_BATCH_SIZE = 4
#: ``split`` of :func:`collect_sources` that takes the GT's train and val videos.
ALL_SPLITS = 'all'
#: Suffix of the default shard folder next to the output file.
SHARD_DIR_SUFFIX = '_shards'
#: A detector: a list of BGR frames -> one (n, 5) float32 normalised array per frame.
DetectFn = Callable[[Sequence[np.ndarray]], List[np.ndarray]]


class GenerationReport(NamedTuple):
    """What a call to :func:`generate_shards` did.

    Attributes:
        computed: videos run through the detector in this call.
        reused: videos whose valid shard was already there.
        remaining: videos not visited because ``max_videos`` was reached.
        num_frames: frames run through the detector in this call.
    """

    computed: List[str]
    reused: List[str]
    remaining: List[str]
    num_frames: int

    @property
    def complete(self) -> bool:
        """True when every video has a shard."""
        return not self.remaining


def _batches(
    frames: Iterator[Tuple[int, np.ndarray]], batch_size: int
) -> Iterator[Tuple[List[int], List[np.ndarray]]]:
    """Group ``(frame_number, image)`` pairs into lists of at most ``batch_size``."""
    numbers: List[int] = []
    images: List[np.ndarray] = []
    for number, image in frames:
        numbers.append(number)
        images.append(image)
        if len(images) == batch_size:
            yield numbers, images
            numbers, images = [], []
    if images:
        yield numbers, images


def detect_video(
    detect: DetectFn,
    source: FrameSource,
    frame_interval: int = 1,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Optional[Progress] = None,
) -> Dict[str, np.ndarray]:
    """Proposals of one video: frame key -> np.ndarray[n, 5] float32, frames ascending.

    Args:
        detect: the detector (e.g. :meth:`PersonDetector.detect`).
        source: the video or frame folder.
        frame_interval: run on frames 1, 1 + k, 1 + 2k, ...
        batch_size: frames per detector call.
        progress: a rich progress display to advance, or None.
    """
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    task = None
    if progress is not None:
        total = -(-estimate_num_frames(source) // frame_interval)  # ceil division
        task = progress.add_task(source.name, total=total or None)
    proposals: Dict[str, np.ndarray] = {}
    for frames, images in _batches(iter_frames(source, frame_interval), batch_size):
        for frame, boxes in zip(frames, detect(images)):
            proposals[frame_key(source.name, frame)] = boxes
        if task is not None:
            progress.advance(task, len(frames))
    if task is not None:
        progress.remove_task(task)
    return proposals


def _progress_display(enabled: bool) -> Progress:
    return Progress(
        TextColumn('[bold]{task.description}'),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
    )


def generate_shards(
    detect: DetectFn,
    sources: Sequence[FrameSource],
    shard_dir: str,
    settings: Mapping,
    frame_interval: int = 1,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_videos: Optional[int] = None,
    redo_corrupt: bool = False,
    show_progress: bool = True,
) -> GenerationReport:
    """Make the shard of every video that lacks a valid one.

    Args:
        detect: the detector.
        sources: the videos, in output order; names must be unique.
        shard_dir: folder of the shards (:func:`~.shards.shard_path`).
        settings: the detector fingerprint; stored in each shard together with
            ``frame_interval`` (:func:`shard_settings`). A shard with other
            settings is an error (:class:`~.shards.ShardSettingsMismatch`),
            never silently reused.
        frame_interval: run on every k-th frame.
        batch_size: frames per detector call.
        max_videos: compute at most this many videos in this call, then stop
            (the rest stay in ``remaining``); None for all.
        redo_corrupt: recompute a corrupted/truncated shard (with a warning)
            instead of raising :class:`~.shards.CorruptShardError`.
        show_progress: draw a rich progress bar.
    """
    names = [source.name for source in sources]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f'video names occur more than once: {duplicates}')
    settings = shard_settings(settings, frame_interval)
    computed: List[str] = []
    reused: List[str] = []
    remaining: List[str] = []
    num_frames = 0
    with _progress_display(show_progress) as progress:
        videos_task = progress.add_task('videos', total=len(sources))
        for position, source in enumerate(sources):
            path = shard_path(shard_dir, source.name)
            if osp.isfile(path):
                try:
                    read_shard(path, source.name, settings)
                    reused.append(source.name)
                    progress.advance(videos_task)
                    continue
                except CorruptShardError as exc:
                    if not redo_corrupt:
                        raise
                    logger.warning('recomputing %s: %s', source.name, exc)
            if max_videos is not None and len(computed) >= max_videos:
                remaining = names[position:]
                break
            proposals = detect_video(detect, source, frame_interval, batch_size, progress)
            remove_stale_temporaries(path)
            write_shard(path, source.name, proposals, settings)
            computed.append(source.name)
            num_frames += len(proposals)
            progress.advance(videos_task)
    return GenerationReport(computed, reused, remaining, num_frames)


def shard_settings(fingerprint: Mapping, frame_interval: int) -> Dict:
    """The settings a shard must match to be reused: detector fingerprint + sampling."""
    return dict(fingerprint, frame_interval=frame_interval)


def collect_sources(
    videos: Optional[Sequence[str]] = None,
    gt_file: Optional[str] = None,
    split: str = 'val',
    video_root: Optional[str] = None,
    frame_root: Optional[str] = None,
) -> List[FrameSource]:
    """The videos to process, in output order.

    Args:
        videos: video files or frame folders; named by their path relative to
            ``video_root`` (default: bare file names). Takes precedence over ``gt_file``.
        gt_file: a MultiSports GT pickle: take the videos of ``split``.
        split: ``'train'``, ``'val'`` (the GT's ``test_videos``) or :data:`ALL_SPLITS`.
        video_root: with ``gt_file``: ``<root>/<video_name>.mp4``.
        frame_root: with ``gt_file``: frame folders ``<root>/<video_name>/`` (preferred
            to ``video_root`` when both exist).
    """
    if videos:
        return sources_from_paths(videos, root=video_root)
    if gt_file is None:
        raise ValueError('collect_sources needs videos or a GT file (--videos or --gt)')
    gt = load_pickle(gt_file)
    splits = ('train', 'val') if split == ALL_SPLITS else (split,)
    names = [name for one in splits for name in split_videos(gt, one, gt_file)]
    return resolve_sources(names, video_root=video_root, frame_root=frame_root)


def generate_proposal_file(
    detect: DetectFn,
    fingerprint: Mapping,
    sources: Sequence[FrameSource],
    out: str,
    work_dir: Optional[str] = None,
    frame_interval: int = 1,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_videos: Optional[int] = None,
    part: Optional[Tuple[int, int]] = None,
    redo_corrupt: bool = False,
    show_progress: bool = True,
) -> GenerationReport:
    """Generate (or resume) the shards of one part of ``sources``; merge all into ``out`` when done.

    Several processes may share ``work_dir``, each with its own ``part``: the
    one that finds every video's shard present writes ``out``. ``out`` is
    written only when every video has a shard.

    Args:
        detect: the detector (e.g. :meth:`PersonDetector.detect`).
        fingerprint: the detector's settings stored in each shard (:func:`shard_settings`).
        sources: every video, in output order.
        out: the merged proposal pickle.
        work_dir: the shard folder (default: ``out`` without ``.pkl`` + ``_shards``).
        frame_interval, batch_size, max_videos, redo_corrupt, show_progress: see
            :func:`generate_shards`.
        part: ``(index, count)``: process videos ``index - 1``, ``index - 1 + count``,
            ... (``index`` from 1); None for all.

    Returns:
        The :class:`GenerationReport` of this call's part.
    """
    if part is not None and not 1 <= part[0] <= part[1]:
        raise ValueError(f'part must be (I, N) with 1 <= I <= N, got {part}')
    own_sources = sources if part is None else sources[part[0] - 1 :: part[1]]
    work_dir = work_dir or osp.splitext(out)[0] + SHARD_DIR_SUFFIX
    report = generate_shards(
        detect,
        own_sources,
        work_dir,
        fingerprint,
        frame_interval=frame_interval,
        batch_size=batch_size,
        max_videos=max_videos,
        redo_corrupt=redo_corrupt,
        show_progress=show_progress,
    )
    logger.info(
        '%d videos computed (%d frames), %d reused from %s',
        len(report.computed),
        report.num_frames,
        len(report.reused),
        work_dir,
    )
    if not report.complete:
        logger.info(
            'stopped after max_videos=%d: %d videos remain; run the same command again to continue',
            max_videos,
            len(report.remaining),
        )
        return report
    names = [source.name for source in sources]
    missing = [name for name in names if not osp.isfile(shard_path(work_dir, name))]
    if missing:  # only with parts: this call's videos all have a shard
        logger.info(
            'part %d/%d done; %d videos of other parts are not done yet (e.g. %s); the last '
            'part to finish writes %s',
            *part,
            len(missing),
            missing[0],
            out,
        )
        return report
    proposals = merge_shards(work_dir, names, shard_settings(fingerprint, frame_interval))
    dump_pickle(proposals, out)
    num_boxes = sum(len(boxes) for boxes in proposals.values())
    logger.info('%d frames, %d person boxes -> %s', len(proposals), num_boxes, out)
    return report
