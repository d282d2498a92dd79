"""Challenge submission files, written without ground truth.

The MultiSports test split has no GT, so the frame detections cannot index
``test_videos[0]`` of a GT file. A submission made by
``MultiSportsTubeMetric(format_only=True, outfile_prefix=P)`` (or by
``tools/ensemble.py``) is three files:

* ``P_frame_detections.pkl``: the official frame format, an ``(M, 8)``
  float64 array ``[video_index, frame, label, score, x1, y1, x2, y2]``
  (pixels, frames from 1, labels from 0); ``video_index`` indexes the list below.
* ``P_videos.json``: that ordered video list, with what linking needs::

      {"format": "pcca_plugin.multisports_videos", "version": 1,
       "labels": [class names],
       "videos": [{"name": "<sport>/<video>", "nframes": int, "resolution": [h, w]}, ...]}

* ``P_video_detections.pkl``: the linked tubes in the official video format,
  ``{label: [(video_name, tube_score, tube (L, 6))]}``.

Both pickles are written readable by numpy 1.x and 2.x
(:func:`~pcca_plugin.utils.pickle_io.dump_pickle`). The upload is
``P_submission.zip`` (:mod:`.archive`): the two pickles as the 2021 challenge
server read them, written with the files (``write_submission(...,
archive=True)``, ``--zip``) or from files written earlier
(:func:`archive_submission`). Linking needs only the
video names and frame counts, so it runs on a :class:`GroundTruth` without
tubes built from the video list (:func:`video_list_ground_truth`); the tubes
are the ones linking with the real GT gives, as long as the video list lists
the GT's ``test_videos[0]`` in the same order (``prepare_multisports.py
--split test --video-list``).
"""

import json
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from pcca_plugin.utils.pickle_io import dump_pickle, load_pickle, write_file_atomically

from .archive import archive_path, write_submission_archive
from .ground_truth import (
    GroundTruth,
    check_frame_detections,
    check_video_detections,
    load_detections,
)
from .linking import MIN_TUBE_LENGTH, MIN_TUBE_SCORE, link_tubes

#: ``format`` field of a video list file.
VIDEO_LIST_FORMAT = 'pcca_plugin.multisports_videos'
#: ``version`` field of a video list file.
VIDEO_LIST_VERSION = 1
#: File name endings of the submission files after the prefix.
FRAME_DETECTIONS_SUFFIX = '_frame_detections.pkl'
VIDEO_DETECTIONS_SUFFIX = '_video_detections.pkl'
VIDEO_LIST_SUFFIX = '_videos.json'


@dataclass
class VideoList:
    """The ordered videos a submission's ``video_index`` refers to.

    Attributes:
        names: video names (V,), in ``video_index`` order.
        nframes: frames per video (V,).
        resolution: ``(height, width)`` per video (V,).
        labels: class names (C,).
        source: where it came from, for messages.
    """

    names: List[str]
    nframes: List[int]
    resolution: List[Tuple[int, int]]
    labels: List[str]
    source: str = '<video list>'

    def to_dict(self) -> dict:
        """The JSON layout of ``P_videos.json``."""
        return dict(
            format=VIDEO_LIST_FORMAT,
            version=VIDEO_LIST_VERSION,
            labels=list(self.labels),
            videos=[
                dict(name=name, nframes=int(n), resolution=[int(v) for v in res])
                for name, n, res in zip(self.names, self.nframes, self.resolution)
            ],
        )

    @classmethod
    def from_ground_truth(cls, gt: GroundTruth) -> 'VideoList':
        """The test videos of a GT file, in ``test_videos[0]`` order."""
        return cls(
            names=list(gt.videos),
            nframes=[int(n) for n in gt.nframes],
            resolution=[(int(h), int(w)) for h, w in gt.resolution],
            labels=list(gt.labels),
            source=gt.source,
        )


def submission_paths(prefix: str) -> Dict[str, str]:
    """``{'frame_detections', 'video_detections', 'videos'}`` -> file of prefix ``prefix``."""
    return dict(
        frame_detections=prefix + FRAME_DETECTIONS_SUFFIX,
        video_detections=prefix + VIDEO_DETECTIONS_SUFFIX,
        videos=prefix + VIDEO_LIST_SUFFIX,
    )


def video_list_path_of(frame_detections_path: str) -> Optional[str]:
    """``P_videos.json`` next to ``P_frame_detections.pkl``; None for other names."""
    if not frame_detections_path.endswith(FRAME_DETECTIONS_SUFFIX):
        return None
    return frame_detections_path[: -len(FRAME_DETECTIONS_SUFFIX)] + VIDEO_LIST_SUFFIX


def read_video_list(path: str) -> VideoList:
    """Load and check ``P_videos.json``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a video list, or a field is malformed (named).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such video list')
    try:
        with open(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f'{path}: not a JSON video list ({exc}); re-create it') from None
    if not isinstance(data, dict) or data.get('format') != VIDEO_LIST_FORMAT:
        raise ValueError(
            f'{path}: not a pcca_plugin video list (format {VIDEO_LIST_FORMAT!r}); it is '
            'written next to <prefix>_frame_detections.pkl by a format-only test run'
        )
    if data.get('version') != VIDEO_LIST_VERSION:
        raise ValueError(
            f'{path}: video list version {data.get("version")}, this code reads '
            f'{VIDEO_LIST_VERSION}'
        )
    names, nframes, resolution = [], [], []
    for i, entry in enumerate(data.get('videos', [])):
        try:
            name, count = str(entry['name']), int(entry['nframes'])
            height, width = (int(v) for v in entry['resolution'])
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                f"{path}: videos[{i}] = {entry!r}; expected {{'name', 'nframes', "
                "'resolution': [h, w]}"
            ) from None
        if count < 1 or height < 1 or width < 1:
            raise ValueError(f'{path}: videos[{i}] ({name!r}) has no frames or no size')
        names.append(name)
        nframes.append(count)
        resolution.append((height, width))
    if len(set(names)) != len(names):
        raise ValueError(f'{path}: a video is listed twice')
    return VideoList(names, nframes, resolution, [str(n) for n in data['labels']], path)


def write_video_list(video_list: VideoList, path: str) -> None:
    """Write ``P_videos.json`` atomically (temporary file, then rename)."""
    write_file_atomically(json.dumps(video_list.to_dict(), indent=1).encode(), path)


def video_list_ground_truth(video_list: VideoList) -> GroundTruth:
    """A :class:`GroundTruth` with the videos and no tubes: enough to check and link detections."""
    gt = dict(
        labels=list(video_list.labels),
        train_videos=[[]],
        test_videos=[list(video_list.names)],
        nframes=dict(zip(video_list.names, video_list.nframes)),
        resolution=dict(zip(video_list.names, video_list.resolution)),
        gttubes={name: {} for name in video_list.names},
    )
    return GroundTruth.from_dict(gt, source=video_list.source)


def write_submission(
    prefix: str,
    frame_detections: Union[str, np.ndarray],
    video_list: VideoList,
    len_thr: int = MIN_TUBE_LENGTH,
    score_thr: float = MIN_TUBE_SCORE,
    progress: bool = False,
    tie_order: str = 'official',
    archive: bool = False,
) -> Dict[str, str]:
    """Check and link frame detections, then write the three submission files.

    Everything is computed before the first file is written, and each file is
    written to a temporary name and renamed, so an error leaves no partial
    submission.

    Args:
        prefix: path prefix ``P`` of the files.
        frame_detections: ``(M, 8)`` array indexing ``video_list`` (or a pickle path).
        video_list: the videos ``video_index`` refers to.
        len_thr: minimum linked tube length in frames.
        score_thr: minimum linked tube score.
        progress: show a progress bar while linking.
        tie_order: how the linker ranks tied scores (see :func:`link_tubes`).
        archive: also write ``P_submission.zip`` of the same detections and tubes
            (:func:`~.archive.write_submission_archive`), under ``'archive'``.

    Returns:
        :func:`submission_paths` of ``prefix`` (and ``'archive'``).

    Raises:
        ValueError: a row indexes no video of the list, or a frame outside it.
    """
    paths = submission_paths(prefix)
    gt = video_list_ground_truth(video_list)
    dets, _ = load_detections(frame_detections, 'frame detections')
    dets = check_frame_detections(dets, gt, paths['frame_detections']).array
    tubes = link_tubes(
        gt, dets, len_thr=len_thr, score_thr=score_thr, progress=progress, tie_order=tie_order
    )
    dump_pickle(np.asarray(dets, dtype=np.float64), paths['frame_detections'])
    write_video_list(video_list, paths['videos'])
    dump_pickle(tubes, paths['video_detections'])
    if archive:
        # The archive holds what the files hold: dump_pickle stores a numpy scalar (the
        # linker's np.float64 tube score) as the Python float of the same value.
        stored = {
            label: [(name, float(score), tube) for name, score, tube in entries]
            for label, entries in tubes.items()
        }
        paths['archive'] = write_submission_archive(
            archive_path(prefix), dets, stored, len(video_list.labels)
        )
    return paths


def archive_submission(prefix: str) -> str:
    """Build ``P_submission.zip`` from the files of a format-only run or an ensemble.

    Reads ``P_frame_detections.pkl`` and ``P_video_detections.pkl`` (restricted
    unpickler) and ``P_videos.json``, checks the rows and tubes against the
    video list (video indices, frames, labels, video names), then writes
    :func:`write_submission_archive` with a key for every label of the list.

    Returns:
        The archive's path.

    Raises:
        FileNotFoundError: one of the three files is missing (named, with how
            to make it).
        ValueError: a file does not match the video list (file, row / entry, field).
    """
    paths = submission_paths(prefix)
    for key in ('frame_detections', 'video_detections', 'videos'):
        if not osp.isfile(paths[key]):
            raise FileNotFoundError(
                f'{paths[key]}: no such file; the archive is made from the files of a '
                'format-only run (tools/test.py --test-split/--format-only --outfile-prefix '
                f'{prefix}) or an ensemble (tools/ensemble.py --out-prefix {prefix})'
            )
    videos = read_video_list(paths['videos'])
    gt = video_list_ground_truth(videos)
    frames = load_pickle(paths['frame_detections'])
    tubes = load_pickle(paths['video_detections'])
    check_frame_detections(frames, gt, paths['frame_detections'])
    check_video_detections(tubes, gt, paths['video_detections'])
    return write_submission_archive(archive_path(prefix), frames, tubes, len(videos.labels))


def same_video_lists(lists: Sequence[VideoList]) -> None:
    """Raise ValueError naming the two files when two video lists differ (order included)."""
    first = lists[0]
    for other in lists[1:]:
        for field in ('names', 'nframes', 'resolution', 'labels'):
            a, b = getattr(first, field), getattr(other, field)
            if [tuple(x) if isinstance(x, (list, tuple)) else x for x in a] != [
                tuple(x) if isinstance(x, (list, tuple)) else x for x in b
            ]:
                raise ValueError(
                    f'{first.source} and {other.source} list different {field}; the '
                    'video_index of their frame detections does not mean the same videos. '
                    'Make every result from the same prepared test split'
                )
