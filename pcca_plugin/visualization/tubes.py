"""Draw linked action tubes on video frames and write them as mp4 / GIF.

Used by the demo (``tools/run_demo.py``) and the video demo
(``tools/demo/demo_video.py``). Tubes are in the official MultiSports
video-detection layout: ``(L, 6)`` rows ``[frame, x1, y1, x2, y2, box_score]``
in pixels, frames 1-based.

Shape shorthand: ``T`` frames, ``H x W`` the input frames, ``H' x W'`` the
drawn (upscaled) frames, ``L`` boxes of a tube.

Every tube gets its own colour (:func:`tube_colour`), its box and a label
``#id label score`` on a filled box of that colour. Several tubes on one
person (one box per class, as the linker makes them) or overlapping persons
would put their labels on the same spot; :func:`place_labels` stacks them
instead, above the box where there is room, never overlapping each other or
the legend, and always inside the frame. A legend in the corner that the
tubes cover least lists the colours of the tubes shown on the frame.
:func:`render_tubes` returns the rectangles it placed, so that the layout can
be checked (``tests/test_visualization/test_label_layout.py``).
"""

import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

#: A rectangle on a drawn frame, ``(x1, y1, x2, y2)`` in pixels, half-open: it covers
#: columns ``x1 .. x2 - 1`` and rows ``y1 .. y2 - 1``.
Rect = Tuple[int, int, int, int]

#: Distinct BGR colours of the first tubes (tube ``i`` gets colour ``i``); further
#: tubes get hues spread by the golden ratio (:func:`tube_colour`).
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
#: Hue step of the generated colours: the golden ratio's fractional part spreads
#: consecutive hues as far apart as any fixed step can.
GOLDEN_RATIO_HUE_STEP = 0.6180339887
#: Saturation and value (OpenCV's 0-255 HSV scale) of the generated colours.
GENERATED_SATURATION = 210
GENERATED_VALUE = 255
#: OpenCV's hue range (HSV images hold hue in ``0 .. 179``).
OPENCV_HUE_RANGE = 180
#: Text drawn on frames: OpenCV Hershey font, scale and thickness.
FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.4
FONT_THICKNESS = 1
BOX_THICKNESS = 1
#: Pixels between a label's text and the edge of its filled box.
LABEL_PADDING = 2
#: Labels on a colour brighter than this luma (0-255, ITU-R BT.601 weights) get black
#: text, darker ones white text.
DARK_TEXT_LUMA = 140
BT601_BGR_WEIGHTS = (0.114, 0.587, 0.299)
#: Legend: distance from the frame edge, colour swatch side, gap after the swatch,
#: background opacity (the scene stays visible under it).
LEGEND_MARGIN = 3
LEGEND_SWATCH = 9
LEGEND_GAP = 4
LEGEND_OPACITY = 0.65
#: Corners the legend may take, in order of preference when the tubes cover them
#: equally (the labels sit above the boxes, so the bottom corners are freer).
LEGEND_CORNERS = ('bottom-right', 'bottom-left', 'top-right', 'top-left')
#: Text that replaces the cut end of a label wider than the frame.
ELLIPSIS = '..'
#: Upscale small frames before drawing so labels stay readable.
MIN_DRAW_HEIGHT = 240


@dataclass(frozen=True)
class LabelBox:
    """Where a tube's label went on one drawn frame."""

    tube_id: int
    text: str
    rect: Rect


@dataclass
class TubeDrawing:
    """What :func:`render_tubes` drew.

    Attributes:
        frames: ``(T, H', W', 3)`` uint8 BGR.
        labels: per frame, the :class:`LabelBox` of every tube on it.
        legends: per frame, the legend's rectangle (None on a frame without tubes
            or with the legend switched off).
        scale: ``H' / H``, the upscaling of the input frames.
    """

    frames: np.ndarray
    labels: List[List[LabelBox]] = field(default_factory=list)
    legends: List[Optional[Rect]] = field(default_factory=list)
    scale: float = 1.0


def tube_colour(tube_id: int) -> Tuple[int, int, int]:
    """BGR colour of tube ``tube_id``: :data:`TUBE_COLOURS`, then golden-ratio hues."""
    if tube_id < len(TUBE_COLOURS):
        return TUBE_COLOURS[tube_id]
    hue = (tube_id * GOLDEN_RATIO_HUE_STEP) % 1.0
    hsv = np.array(
        [[[int(hue * OPENCV_HUE_RANGE), GENERATED_SATURATION, GENERATED_VALUE]]], np.uint8
    )  # (1, 1, 3)
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def text_colour(background: Tuple[int, int, int]) -> Tuple[int, int, int]:
    """Black or white, whichever reads better on ``background`` (BGR)."""
    luma = float(np.dot(BT601_BGR_WEIGHTS, background))
    return (0, 0, 0) if luma > DARK_TEXT_LUMA else (255, 255, 255)


def label_size(text: str) -> Tuple[int, int]:
    """``(width, height)`` in pixels of a label box holding ``text``, padding included."""
    (width, height), baseline = cv2.getTextSize(text, FONT, FONT_SCALE, FONT_THICKNESS)
    return width + 2 * LABEL_PADDING, height + baseline + 2 * LABEL_PADDING


def fit_text(text: str, max_width: int) -> str:
    """``text``, cut and ended with :data:`ELLIPSIS` until its label fits ``max_width``."""
    if label_size(text)[0] <= max_width:
        return text
    while text and label_size(text + ELLIPSIS)[0] > max_width:
        text = text[:-1]
    return text + ELLIPSIS


def rects_overlap(a: Rect, b: Rect) -> bool:
    """Whether two half-open rectangles share a pixel."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def overlap_area(a: Rect, b: Rect) -> int:
    """Pixels shared by two half-open rectangles."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return max(width, 0) * max(height, 0)


def place_labels(
    anchors: Sequence[Rect],
    sizes: Sequence[Tuple[int, int]],
    frame_size: Tuple[int, int],
    obstacles: Sequence[Rect] = (),
) -> List[Rect]:
    """Place one label per box: inside the frame, off each other and off ``obstacles``.

    Greedy, in the given order (best tube first): a label goes where it is
    preferred, just above its box's top-left corner, if that spot is free;
    else to the nearest free spot in its column (rows on a grid of its own
    height, so that labels of one person stack above the box, then into it,
    and rows touching the labels already placed); else to the nearest free
    spot in another column (the frame edges and the columns touching the labels
    already placed); else, when nothing is free, where it overlaps least. The
    search is complete: if a free spot exists, one is found (a free label slid
    left, then up, as far as it goes, stops at the frame edge or against a
    placed rectangle, i.e. at a candidate).

    Args:
        anchors: ``N`` boxes ``(x1, y1, x2, y2)`` in pixels of the frame.
        sizes: ``N`` label sizes ``(width, height)``; a label larger than the
            frame is cut to it (shorten its text first: :func:`fit_text`).
        frame_size: ``(width, height)`` of the frame.
        obstacles: rectangles the labels must not cover (the legend).

    Returns:
        ``N`` rectangles ``(x1, y1, x2, y2)``, half-open, inside the frame.
    """
    frame_width, frame_height = frame_size
    placed: List[Rect] = list(obstacles)
    result: List[Rect] = []
    for anchor, (width, height) in zip(anchors, sizes):
        width, height = min(width, frame_width), min(height, frame_height)
        max_x, max_y = frame_width - width, frame_height - height
        x0 = int(np.clip(anchor[0], 0, max_x))
        y0 = int(anchor[1]) - height  # just above the box
        steps = frame_height // height + 2
        ys = {int(np.clip(y0 + k * height, 0, max_y)) for k in range(-steps, steps + 1)}
        ys |= {0, max_y}
        for rect in placed:
            ys |= {int(np.clip(rect[3], 0, max_y)), int(np.clip(rect[1] - height, 0, max_y))}
        # Nearest to the preferred row first; at equal distance, the higher one.
        ys_sorted = sorted(ys, key=lambda y: (abs(y - y0), y))
        xs = {x0, 0, max_x}
        for rect in placed:
            xs |= {int(np.clip(rect[2], 0, max_x)), int(np.clip(rect[0] - width, 0, max_x))}
        # The box's own column first, then the others, nearest first.
        xs_sorted = sorted(xs, key=lambda x: (abs(x - x0), x))
        candidates = [(x, y) for x in xs_sorted for y in ys_sorted]
        best, best_cost = None, None
        for x, y in candidates:
            rect = (x, y, x + width, y + height)
            cost = sum(overlap_area(rect, other) for other in placed)
            if cost == 0:
                best = rect
                break
            if best_cost is None or cost < best_cost:
                best, best_cost = rect, cost
        placed.append(best)
        result.append(best)
    return result


def _legend_rows(entries: Sequence[str], frame_height: int) -> List[str]:
    """The legend's text rows: one per entry, ``+k more`` when they do not all fit."""
    row_height = max(label_size('#')[1], LEGEND_SWATCH)
    capacity = max(1, (frame_height - 2 * LEGEND_MARGIN) // row_height)
    if len(entries) <= capacity:
        return list(entries)
    return list(entries[: capacity - 1]) + [f'+{len(entries) - capacity + 1} more']


def legend_size(entries: Sequence[str], frame_size: Tuple[int, int]) -> Tuple[int, int]:
    """``(width, height)`` of the legend listing ``entries``, cut to the frame."""
    frame_width, frame_height = frame_size
    rows = _legend_rows(entries, frame_height)
    row_height = max(label_size('#')[1], LEGEND_SWATCH)
    text_width = max(label_size(text)[0] for text in rows)
    width = LEGEND_SWATCH + LEGEND_GAP + text_width + LABEL_PADDING
    return min(width, frame_width - 2 * LEGEND_MARGIN), len(rows) * row_height


def legend_rect(corner: str, size: Tuple[int, int], frame_size: Tuple[int, int]) -> Rect:
    """The legend's rectangle of ``size`` in ``corner`` (one of :data:`LEGEND_CORNERS`)."""
    (width, height), (frame_width, frame_height) = size, frame_size
    x1 = LEGEND_MARGIN if corner.endswith('left') else frame_width - LEGEND_MARGIN - width
    y1 = LEGEND_MARGIN if corner.startswith('top') else frame_height - LEGEND_MARGIN - height
    return (max(x1, 0), max(y1, 0), max(x1, 0) + width, max(y1, 0) + height)


def choose_legend_corner(
    boxes: Sequence[Rect], size: Tuple[int, int], frame_size: Tuple[int, int]
) -> str:
    """The corner whose legend rectangle the ``boxes`` (of all frames) cover least."""
    costs = [
        sum(overlap_area(legend_rect(corner, size, frame_size), box) for box in boxes)
        for corner in LEGEND_CORNERS
    ]
    return LEGEND_CORNERS[int(np.argmin(costs))]


def _draw_label(frame: np.ndarray, rect: Rect, text: str, colour: Tuple[int, int, int]) -> None:
    x1, y1, x2, y2 = rect
    cv2.rectangle(frame, (x1, y1), (x2 - 1, y2 - 1), colour, cv2.FILLED)
    _, text_height = cv2.getTextSize(text, FONT, FONT_SCALE, FONT_THICKNESS)[0]
    origin = (x1 + LABEL_PADDING, y1 + LABEL_PADDING + text_height)
    cv2.putText(
        frame, text, origin, FONT, FONT_SCALE, text_colour(colour), FONT_THICKNESS, cv2.LINE_AA
    )


def _draw_legend(
    frame: np.ndarray, rect: Rect, rows: Sequence[Tuple[str, Optional[Tuple[int, int, int]]]]
) -> None:
    """A translucent dark panel with a colour swatch and text per row."""
    x1, y1, x2, y2 = rect
    panel = frame[y1:y2, x1:x2]
    panel[:] = (panel * (1 - LEGEND_OPACITY)).astype(np.uint8)  # darken (0 = black panel)
    row_height = max(label_size('#')[1], LEGEND_SWATCH)
    for index, (text, colour) in enumerate(rows):
        top = y1 + index * row_height
        swatch_top = top + (row_height - LEGEND_SWATCH) // 2
        if colour is not None:
            cv2.rectangle(
                frame,
                (x1 + LABEL_PADDING, swatch_top),
                (x1 + LABEL_PADDING + LEGEND_SWATCH - 1, swatch_top + LEGEND_SWATCH - 1),
                colour,
                cv2.FILLED,
            )
        text = fit_text(text, x2 - x1 - LEGEND_SWATCH - LEGEND_GAP)
        _, text_height = cv2.getTextSize(text, FONT, FONT_SCALE, FONT_THICKNESS)[0]
        origin = (
            x1 + LABEL_PADDING + LEGEND_SWATCH + LEGEND_GAP,
            top + LABEL_PADDING + text_height,
        )
        cv2.putText(
            frame, text, origin, FONT, FONT_SCALE, (255, 255, 255), FONT_THICKNESS, cv2.LINE_AA
        )


def render_tubes(
    frames: np.ndarray,
    tubes: Sequence[Tuple[int, float, np.ndarray]],
    class_names: Sequence[str],
    max_tubes: Optional[int] = None,
    legend: bool = True,
) -> TubeDrawing:
    """Draw tubes on a copy of the frames; return the frames and where every label went.

    Tube ``i`` (its index in ``tubes``, the ``id`` of
    :func:`pcca_plugin.visualization.video_demo.tubes_to_json`) gets colour
    :func:`tube_colour` ``(i)``, its box, and the label ``#i label score`` placed by
    :func:`place_labels` (best tube first). With ``legend``, each frame with
    tubes shows a legend (colour swatch, ``#i label``) of its tubes, in the corner
    the tubes' boxes over the whole video cover least (the same corner on every
    frame and in every chunk of a video drawn chunk by chunk).

    Args:
        frames: ``(T, H, W, 3)`` uint8 BGR; frame ``t`` (0-based) is frame ``t + 1``.
        tubes: ``(label, tube_score, tube (L, 6))`` with pixel boxes of these frames.
        class_names: label index -> name.
        max_tubes: draw only the best ``max_tubes`` (all when None).
        legend: draw the legend.

    Returns:
        :class:`TubeDrawing` with ``(T, H', W', 3)`` frames, upscaled so that
        ``H' >= MIN_DRAW_HEIGHT``.
    """
    num_frames, height, width = frames.shape[:3]
    scale = max(1.0, MIN_DRAW_HEIGHT / height)
    size = (int(round(width * scale)), int(round(height * scale)))  # (W', H')
    canvas = np.stack(
        [cv2.resize(frame, size, interpolation=cv2.INTER_NEAREST) for frame in frames]
    )  # (T, H', W', 3)
    shown = list(tubes[:max_tubes])
    texts = [
        fit_text(f'#{i} {class_names[label]} {score:.2f}', size[0])
        for i, (label, score, _) in enumerate(shown)
    ]
    legend_texts = [f'#{i} {class_names[label]}' for i, (label, _, _) in enumerate(shown)]
    per_frame: List[List[Tuple[int, Rect]]] = [[] for _ in range(num_frames)]
    # Every box and the tubes on every frame of the whole video, also outside these
    # frames: the legend's corner then depends on the video only, not on the chunk.
    all_boxes: List[Rect] = []
    tubes_on_frame: Dict[int, List[int]] = {}
    for tube_id, (_, _, tube) in enumerate(shown):
        for row in np.asarray(tube, dtype=np.float64):
            box = tuple(int(round(v * scale)) for v in row[1:5])
            all_boxes.append(box)
            tubes_on_frame.setdefault(int(row[0]), []).append(tube_id)
            t = int(row[0]) - 1
            if 0 <= t < num_frames:
                per_frame[t].append((tube_id, box))
    corner = None
    if legend and tubes_on_frame:
        busiest = max(tubes_on_frame.values(), key=len)
        largest = legend_size([legend_texts[i] for i in busiest], size)
        corner = choose_legend_corner(all_boxes, largest, size)
    drawing = TubeDrawing(frames=canvas, scale=scale)
    for t, visible in enumerate(per_frame):
        legend_box = None
        obstacles: List[Rect] = []
        if corner is not None and visible:
            entries = [legend_texts[i] for i, _ in visible]
            legend_box = legend_rect(corner, legend_size(entries, size), size)
            obstacles.append(legend_box)
        for tube_id, (x1, y1, x2, y2) in visible:
            cv2.rectangle(canvas[t], (x1, y1), (x2, y2), tube_colour(tube_id), BOX_THICKNESS)
        rects = place_labels(
            [box for _, box in visible],
            [label_size(texts[i]) for i, _ in visible],
            size,
            obstacles,
        )
        labels = []
        for (tube_id, _), rect in zip(visible, rects):
            _draw_label(canvas[t], rect, texts[tube_id], tube_colour(tube_id))
            labels.append(LabelBox(tube_id, texts[tube_id], rect))
        if legend_box is not None:
            rows = _legend_rows([legend_texts[i] for i, _ in visible], size[1])
            colours: List[Optional[Tuple[int, int, int]]] = [tube_colour(i) for i, _ in visible]
            if len(rows) < len(visible):  # the last row says how many more there are
                colours[len(rows) - 1] = None
            _draw_legend(canvas[t], legend_box, list(zip(rows, colours)))
        drawing.labels.append(labels)
        drawing.legends.append(legend_box)
    return drawing


def draw_tubes(
    frames: np.ndarray,
    tubes: Sequence[Tuple[int, float, np.ndarray]],
    class_names: Sequence[str],
    max_tubes: Optional[int] = None,
    legend: bool = True,
) -> np.ndarray:
    """Draw tubes (box, stacked ``#id label score`` labels, legend) on a copy of the frames.

    :func:`render_tubes` without the layout.

    Args:
        frames: ``(T, H, W, 3)`` uint8 BGR; frame ``t`` (0-based) is frame ``t + 1``.
        tubes: ``(label, tube_score, tube (L, 6))`` with pixel boxes of these frames.
        class_names: label index -> name.
        max_tubes: draw only the best ``max_tubes`` (all when None).
        legend: draw the legend of the tubes' colours.

    Returns:
        ``(T, H', W', 3)`` uint8 BGR, upscaled so that ``H' >= MIN_DRAW_HEIGHT``.
    """
    return render_tubes(frames, tubes, class_names, max_tubes, legend).frames


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
