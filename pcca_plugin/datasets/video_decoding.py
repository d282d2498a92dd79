"""Decode a whole video with OpenCV: count its frames, read its size, optionally save them.

The data preparation decodes every video once, because the decoded frame count
is what the dataset will index (container headers are often wrong), and the
test split has no GT that would give ``nframes`` and ``resolution``.
Used by :mod:`pcca_plugin.datasets.preparation` and
``tools/data/multisports/prepare_multisports.py --extract-frames``.
"""

import os
import os.path as osp
import shutil
import tempfile
from typing import NamedTuple, Optional, Tuple

from pcca_plugin.utils.multisports_format import FIRST_FRAME


class FrameCountError(OSError):
    """A video decodes to another number of frames than the preparation expects."""


class VideoProbe(NamedTuple):
    """What decoding a whole video found.

    Attributes:
        nframes: frames decoded (the 1-based frames are ``1..nframes``).
        height: frame height in pixels.
        width: frame width in pixels.
    """

    nframes: int
    height: int
    width: int

    @property
    def resolution(self) -> Tuple[int, int]:
        """``(height, width)``, the MultiSports ``resolution`` entry."""
        return self.height, self.width


def decode_video(
    video_path: str,
    frame_dir: Optional[str] = None,
    filename_tmpl: str = 'img_{:05d}.jpg',
    expected_frames: Optional[int] = None,
) -> VideoProbe:
    """Decode every frame of a video with OpenCV: count them, read the size, optionally save them.

    The decoded count is what the dataset will index, so it must equal what
    the preparation expects: ``expected_frames`` (the GT ``nframes``) when
    given, else the frame count the container reports (when it reports one).
    Frames are written into a hidden temporary folder next to ``frame_dir``
    that replaces ``frame_dir`` only once the whole video decoded and checked,
    so a failure never leaves a half-filled frame folder.

    Args:
        video_path: the video file.
        frame_dir: write ``frame_dir/img_00001.jpg ...`` (1-based); None: only count.
        filename_tmpl: frame file names, formatted with the 1-based frame number.
        expected_frames: frames the GT says the video has (None: the container's count).

    Returns:
        :class:`VideoProbe` ``(nframes, height, width)``.

    Raises:
        FileNotFoundError: the video does not exist.
        OSError: OpenCV cannot open it or decodes no frame.
        FrameCountError: the decoded frame count differs from the expected one.
    """
    import cv2

    if not osp.isfile(video_path):
        raise FileNotFoundError(f'{video_path}: video not found')
    capture = cv2.VideoCapture(video_path)
    if not capture.isOpened():
        raise OSError(f'{video_path}: OpenCV cannot open this video; re-download or re-encode')
    header_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    temp_dir = None
    if frame_dir is not None:
        parent = osp.dirname(osp.abspath(frame_dir))
        os.makedirs(parent, exist_ok=True)
        temp_dir = tempfile.mkdtemp(
            dir=parent, prefix=f'.{osp.basename(frame_dir)}.', suffix='.tmp'
        )
    count, height, width = 0, 0, 0
    try:
        while True:
            if temp_dir is None:
                # grab() decodes without converting the frame: enough to count.
                ok = capture.grab()
                if ok and count == 0:
                    ok, frame = capture.retrieve()
                    height, width = frame.shape[:2]
            else:
                ok, frame = capture.read()
                if ok:
                    height, width = frame.shape[:2]
                    cv2.imwrite(
                        osp.join(temp_dir, filename_tmpl.format(count + FIRST_FRAME)), frame
                    )
            if not ok:
                break
            count += 1
        capture.release()
        if count == 0:
            raise OSError(
                f'{video_path}: OpenCV decoded no frame; the video is unreadable or truncated. '
                'Re-download or re-encode it'
            )
        if expected_frames is not None:
            expected, source = int(expected_frames), 'the GT nframes'
        else:
            expected, source = header_frames, 'its container header'
        if expected > 0 and count != expected:
            raise FrameCountError(
                f'{video_path}: decoded {count} frames, {source} says {expected}; the video '
                'is truncated or its frame count is wrong. Re-download it, or re-encode it '
                '(ffmpeg -i IN -c:v libx264 OUT.mp4) and prepare it again'
            )
        if temp_dir is not None:
            if osp.isdir(frame_dir):
                shutil.rmtree(frame_dir)
            os.replace(temp_dir, frame_dir)
            temp_dir = None
    finally:
        capture.release()
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
    return VideoProbe(count, int(height), int(width))


def extract_frames(
    video_path: str,
    frame_dir: str,
    filename_tmpl: str = 'img_{:05d}.jpg',
    expected_frames: Optional[int] = None,
) -> int:
    """Decode a video with OpenCV into ``frame_dir/img_00001.jpg ...`` (1-based).

    A thin wrapper of :func:`decode_video` (same checks, same atomic folder).

    Raises:
        FileNotFoundError: the video does not exist.
        OSError: OpenCV cannot open or decode it.
        FrameCountError: it has another number of frames than ``expected_frames``
            (the GT ``nframes``; None: the container's count).

    Returns:
        The number of frames written.
    """
    return decode_video(video_path, frame_dir, filename_tmpl, expected_frames).nframes
