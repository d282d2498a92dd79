"""Draw linked action tubes on video frames and write them as mp4 / GIF.

Used by the demo (``tools/run_demo.py``) and the video demo
(``tools/demo/demo_video.py``). Tubes are in the official MultiSports
video-detection layout: ``(L, 6)`` rows ``[frame, x1, y1, x2, y2, box_score]``
in pixels, frames 1-based.
"""

import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

#: Distinct BGR colours cycled over tube ids.
TUBE_COLOURS: Tuple[Tuple[int, int, int], ...] = (
    (0, 200, 255),
    (255, 120, 0),
    (60, 220, 60),
    (220, 60, 220),
    (0, 90, 255),
    (255, 220, 0),
    (180, 180, 255),
    (120, 255, 200),
)
#: Text drawn on frames: OpenCV Hershey font scale and thickness.
FONT_SCALE = 0.35
FONT_THICKNESS = 1
BOX_THICKNESS = 1
#: Upscale small frames before drawing so labels stay readable.
MIN_DRAW_HEIGHT = 240


def tubes_for_video(
    video_detections: Dict[int, list], video: str, min_score: float = 0.0
) -> List[Tuple[int, float, np.ndarray]]:
    """Select one video's tubes from an official ``video_detections`` dict.

    Args:
        video_detections: label -> list of ``(video_name, tube_score, tube (L, 6))``.
        video: the video name to keep.
        min_score: drop tubes scored below it.

    Returns:
        list of ``(label, tube_score, tube (L, 6))`` sorted by score, best first.
    """
    selected = [
        (int(label), float(score), np.asarray(tube))
        for label, entries in video_detections.items()
        for name, score, tube in entries
        if name == video and score >= min_score
    ]
    return sorted(selected, key=lambda item: -item[1])


def draw_tubes(
    frames: np.ndarray,
    tubes: Sequence[Tuple[int, float, np.ndarray]],
    class_names: Sequence[str],
    max_tubes: Optional[int] = None,
) -> np.ndarray:
    """Draw tubes (box, ``#id label score``) on a copy of the frames.

    Args:
        frames: ``(T, H, W, 3)`` uint8 BGR; frame ``t`` (0-based) is frame ``t + 1``.
        tubes: ``(label, tube_score, tube (L, 6))`` with pixel boxes of these frames.
        class_names: label index -> name.
        max_tubes: draw only the best ``max_tubes`` (all when None).

    Returns:
        ``(T, H', W', 3)`` uint8 BGR, upscaled so that ``H' >= MIN_DRAW_HEIGHT``.
    """
    num_frames, height, width = frames.shape[:3]
    scale = max(1.0, MIN_DRAW_HEIGHT / height)
    size = (int(round(width * scale)), int(round(height * scale)))
    canvas = np.stack(
        [cv2.resize(frame, size, interpolation=cv2.INTER_NEAREST) for frame in frames]
    )  # (T, H', W', 3)
    for tube_id, (label, score, tube) in enumerate(tubes[:max_tubes]):
        colour = TUBE_COLOURS[tube_id % len(TUBE_COLOURS)]
        text = f'#{tube_id} {class_names[label]} {score:.2f}'
        for row in tube:
            t = int(row[0]) - 1
            if not 0 <= t < num_frames:
                continue
            x1, y1, x2, y2 = (int(round(v * scale)) for v in row[1:5])
            cv2.rectangle(canvas[t], (x1, y1), (x2, y2), colour, BOX_THICKNESS)
            text_width = cv2.getTextSize(
                text, cv2.FONT_HERSHEY_SIMPLEX, FONT_SCALE, FONT_THICKNESS
            )[0][0]
            text_x = max(0, min(x1, size[0] - text_width))  # keep the label inside the frame
            cv2.putText(
                canvas[t],
                text,
                (text_x, max(y1 - 3, 8)),
                cv2.FONT_HERSHEY_SIMPLEX,
                FONT_SCALE,
                colour,
                FONT_THICKNESS,
                cv2.LINE_AA,
            )
    return canvas


def write_mp4(frames: np.ndarray, path: str, fps: float) -> None:
    """Write ``(T, H, W, 3)`` uint8 BGR frames as an mp4 (OpenCV, mp4v codec)."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f'{path}: OpenCV cannot open an mp4 writer here')
    for frame in frames:
        writer.write(np.ascontiguousarray(frame))
    writer.release()


def write_gif(frames: np.ndarray, path: str, fps: float) -> None:
    """Write ``(T, H, W, 3)`` uint8 BGR frames as a looping GIF (Pillow)."""
    from PIL import Image

    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    images = [Image.fromarray(frame[..., ::-1]) for frame in frames]
    images[0].save(
        path, save_all=True, append_images=images[1:], duration=int(round(1000 / fps)), loop=0
    )


def read_video_frames(path: str) -> np.ndarray:
    """Read every frame of a video file as ``(T, H, W, 3)`` uint8 BGR (OpenCV).

    Raises:
        OSError: the file is missing or cannot be decoded (the message names it).
    """
    if not osp.isfile(path):
        raise OSError(f'{path}: no such video file')
    capture = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if not frames:
        raise OSError(f'{path}: OpenCV decoded no frame (unsupported codec or corrupt file)')
    return np.stack(frames)
