"""Frame sources for proposal generation: video files (OpenCV) and frame folders.

A :class:`FrameSource` pairs the *video name* used in frame keys
(``'basketball/v_x_c001'``) with where its frames come from. Frames are
numbered from 1 (:data:`~pcca_plugin.utils.multisports_format.FIRST_FRAME`):
the n-th decoded frame of a video, or the n-th image of a folder in sorted
file-name order. Images are returned as OpenCV reads them: ``uint8`` BGR
arrays of shape ``(H, W, 3)``, the input mmdet's ``LoadImageFromNDArray``
expects.
"""

import os
import os.path as osp
from typing import Iterator, List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..utils.multisports_format import FIRST_FRAME

#: File extensions taken as frames inside a frame folder.
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')
#: Extensions tried, in order, when a video is looked up by name under a root.
VIDEO_EXTENSIONS = ('.mp4', '.mkv', '.webm', '.avi', '.mov')


class FrameDecodeError(RuntimeError):
    """A video or image exists but cannot be decoded."""


class EmptyFrameSourceError(RuntimeError):
    """A video decodes to no frame, or a frame folder holds no image."""


class FrameSource(NamedTuple):
    """One video to run the detector on.

    Attributes:
        name: video name used in frame keys.
        path: a video file or a folder of frame images.
    """

    name: str
    path: str

    @property
    def is_folder(self) -> bool:
        """True when :attr:`path` is a folder of frame images."""
        return osp.isdir(self.path)


def folder_frame_files(folder: str) -> List[str]:
    """Sorted image files of a frame folder; raises when there are none."""
    if not osp.isdir(folder):
        raise FileNotFoundError(f'{folder}: no such frame folder')
    files = sorted(name for name in os.listdir(folder) if name.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        raise EmptyFrameSourceError(
            f'{folder}: frame folder holds no image ({", ".join(IMAGE_EXTENSIONS)}); extract '
            'the frames first (e.g. ffmpeg -i video.mp4 -q:v 1 folder/img_%05d.jpg) or pass '
            'the video file instead'
        )
    return [osp.join(folder, name) for name in files]


def estimate_num_frames(source: FrameSource) -> int:
    """Number of frames of a source (container metadata for videos: an estimate)."""
    if source.is_folder:
        return len(folder_frame_files(source.path))
    capture = _open_video(source.path)
    try:
        return max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
    finally:
        capture.release()


def _open_video(path: str) -> cv2.VideoCapture:
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such video file')
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        capture.release()
        raise FrameDecodeError(
            f'{path}: OpenCV cannot open this video (unknown container or codec, or a '
            'damaged file); re-encode it (e.g. ffmpeg -i in -c:v libx264 out.mp4) or '
            'extract its frames and pass the frame folder'
        )
    return capture


def iter_frames(source: FrameSource, frame_interval: int = 1) -> Iterator[Tuple[int, np.ndarray]]:
    """Yield ``(frame_number, image)`` for frames 1, 1 + k, 1 + 2k, ... of a source.

    Args:
        source: the video or frame folder.
        frame_interval: ``k``; every k-th frame starting from the first.

    Yields:
        ``(frame_number, np.ndarray[H, W, 3] uint8 BGR)``.

    Raises:
        FileNotFoundError: the video file or folder does not exist.
        FrameDecodeError: the video cannot be opened, or an image cannot be read.
        EmptyFrameSourceError: the video yields no frame / the folder no image.
    """
    if frame_interval < 1:
        raise ValueError(f'frame_interval must be >= 1, got {frame_interval}')
    if source.is_folder:
        yield from _iter_folder(source.path, frame_interval)
    else:
        yield from _iter_video(source.path, frame_interval)


def _iter_folder(folder: str, frame_interval: int) -> Iterator[Tuple[int, np.ndarray]]:
    files = folder_frame_files(folder)
    for index in range(0, len(files), frame_interval):
        image = cv2.imread(files[index], cv2.IMREAD_COLOR)
        if image is None:
            raise FrameDecodeError(
                f'{files[index]}: OpenCV cannot read this image; the file '
                'is damaged or not an image. Re-extract the frame.'
            )
        yield index + FIRST_FRAME, image


def _iter_video(path: str, frame_interval: int) -> Iterator[Tuple[int, np.ndarray]]:
    capture = _open_video(path)
    try:
        index = 0
        while True:
            keep = index % frame_interval == 0
            # grab() advances without converting the frame; retrieve() decodes it.
            if not capture.grab():
                break
            if keep:
                ok, image = capture.retrieve()
                if not ok or image is None:
                    raise FrameDecodeError(
                        f'{path}: frame {index + FIRST_FRAME} cannot be '
                        'decoded; the video is damaged. Re-encode it.'
                    )
                yield index + FIRST_FRAME, image
            index += 1
        if index == 0:
            raise EmptyFrameSourceError(
                f'{path}: OpenCV decoded no frame from this video (empty, truncated or '
                'unsupported codec); re-encode it or pass its extracted frame folder'
            )
    finally:
        capture.release()


def resolve_sources(
    names: Sequence[str], video_root: Optional[str] = None, frame_root: Optional[str] = None
) -> List[FrameSource]:
    """Find the video file or frame folder of each video name.

    Args:
        names: video names (e.g. from a GT file's split).
        video_root: look for ``<video_root>/<name><ext>`` for each extension
            of :data:`VIDEO_EXTENSIONS`.
        frame_root: look for the folder ``<frame_root>/<name>``; preferred
            over ``video_root`` when both are given and the folder exists.

    Raises:
        FileNotFoundError: naming the video and every path tried.
    """
    if video_root is None and frame_root is None:
        raise ValueError('give a video root or a frame root to find the videos of the GT file')
    sources = []
    for name in names:
        tried = []
        found = None
        if frame_root is not None:
            folder = osp.join(frame_root, name)
            tried.append(folder + '/')
            if osp.isdir(folder):
                found = folder
        if found is None and video_root is not None:
            for ext in VIDEO_EXTENSIONS:
                candidate = osp.join(video_root, name + ext)
                tried.append(candidate)
                if osp.isfile(candidate):
                    found = candidate
                    break
        if found is None:
            raise FileNotFoundError(f'video {name!r}: none of {tried} exists')
        sources.append(FrameSource(name, found))
    return sources


def sources_from_paths(paths: Sequence[str], root: Optional[str] = None) -> List[FrameSource]:
    """Name videos/frame folders given as paths.

    The name is the path relative to ``root`` without the extension
    (``root/basketball/v_1.mp4`` -> ``'basketball/v_1'``), or the bare file
    or folder name without extension when no root is given.

    Raises:
        ValueError: two paths get the same name, or a path lies outside ``root``.
    """
    sources = []
    seen = {}
    for path in paths:
        clean = osp.normpath(path)
        if root is not None:
            rel = osp.relpath(clean, osp.normpath(root))
            if rel.startswith(os.pardir):
                raise ValueError(f'{path}: not under the video root {root}')
        else:
            rel = osp.basename(clean)
        name = rel if osp.isdir(clean) else osp.splitext(rel)[0]
        name = name.replace(os.sep, '/')
        if name in seen:
            raise ValueError(
                f'{path} and {seen[name]} both get the video name {name!r}; give '
                'a root so that names keep their folders'
            )
        seen[name] = path
        sources.append(FrameSource(name, path))
    return sources
