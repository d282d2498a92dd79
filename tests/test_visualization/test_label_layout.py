"""Labels of the annotated videos: stacked, inside the frame, one colour per tube, a legend.

The layout is measured on what :func:`render_tubes` drew (the rectangles it
returns) and checked against the pixels of the drawn frame.
"""

import itertools

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pcca_plugin.visualization import tubes as tubes_module
from pcca_plugin.visualization.tubes import (
    MIN_DRAW_HEIGHT,
    place_labels,
    render_tubes,
    tube_colour,
)

# The toy-sports frame size (docs/data.md) and its class names.
HEIGHT, WIDTH = 96, 192
CLASS_NAMES = [
    'run left',
    'run right',
    'jump',
    'carry red ball',
    'carry blue ball',
    'jump with red ball',
    'carry red and blue ball',
]
BACKGROUND = (90, 90, 90)


def blank_frames(num_frames=1, height=HEIGHT, width=WIDTH):
    return np.full((num_frames, height, width, 3), BACKGROUND, np.uint8)


def tube(box, frames=(1,), score=0.9):
    """``(L, 6)`` rows ``[frame, x1, y1, x2, y2, box_score]`` with one box on every frame."""
    return np.array([[frame, *box, score] for frame in frames], dtype=np.float64)


def assert_layout(drawing, frame_index):
    """Labels inside the frame, off each other and off the legend."""
    height, width = drawing.frames.shape[1:3]
    rects = [label.rect for label in drawing.labels[frame_index]]
    for x1, y1, x2, y2 in rects:
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height, (x1, y1, x2, y2)
    for a, b in itertools.combinations(rects, 2):
        assert not tubes_module.rects_overlap(a, b), (a, b)
    legend = drawing.legends[frame_index]
    if legend is not None:
        assert 0 <= legend[0] and legend[2] <= width and 0 <= legend[1] and legend[3] <= height
        for rect in rects:
            assert not tubes_module.rects_overlap(rect, legend), (rect, legend)


def dominant_colour(image, rect):
    """The most frequent BGR colour inside ``rect`` of ``image``."""
    x1, y1, x2, y2 = rect
    pixels = image[y1:y2, x1:x2].reshape(-1, 3)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    return tuple(int(c) for c in colours[np.argmax(counts)])


def colour_present(image, colour, rect=None):
    if rect is not None:
        image = image[rect[1] : rect[3], rect[0] : rect[2]]
    return bool(np.all(image == np.array(colour, np.uint8), axis=-1).any())


def test_three_tubes_on_one_person_get_stacked_labels_in_three_colours(tmp_path):
    # One player in the middle of the frame, three linked tubes (three classes) on his box.
    person = (80, 30, 104, 80)
    frames = blank_frames()
    cv2.rectangle(frames[0], person[:2], person[2:], (200, 200, 200), cv2.FILLED)
    tubes = [(3, 0.91, tube(person)), (6, 0.77, tube(person)), (5, 0.52, tube(person))]
    undrawn = frames.copy()
    drawing = render_tubes(frames, tubes, CLASS_NAMES)
    np.testing.assert_array_equal(frames, undrawn)  # drawn on a copy
    cv2.imwrite(str(tmp_path / 'three_tubes.png'), drawing.frames[0])  # to look at by hand

    assert drawing.frames.shape[1] == MIN_DRAW_HEIGHT
    labels = drawing.labels[0]
    assert [label.tube_id for label in labels] == [0, 1, 2]
    assert [label.text for label in labels] == [
        '#0 carry red ball 0.91',
        '#1 carry red and blue ball 0.77',
        '#2 jump with red ball 0.52',
    ]
    assert_layout(drawing, 0)
    # Stacked: the labels share the person's column and are near his box, not scattered.
    scaled_person = [round(v * drawing.scale) for v in person]
    for label in labels:
        assert label.rect[0] == scaled_person[0]
        assert label.rect[1] < scaled_person[3]
    # The pixels: each label box is filled with its tube's colour, the three differ,
    # and the legend shows the three swatches.
    colours = [tube_colour(i) for i in range(3)]
    assert len(set(colours)) == 3
    image = drawing.frames[0]
    for label, colour in zip(labels, colours):
        assert dominant_colour(image, label.rect) == colour
    legend = drawing.legends[0]
    assert legend is not None
    for colour in colours:
        assert colour_present(image, colour, legend)
    # The box of the person is drawn (in the colour of the tube drawn last).
    assert tuple(int(c) for c in image[scaled_person[3], scaled_person[0] + 5]) == colours[2]


@pytest.mark.parametrize(
    'person',
    [
        (0, 0, 30, 60),  # top-left corner: no room above the box
        (165, 40, 192, 96),  # right edge: a label starting at the box would stick out
        (150, 0, 192, 96),  # the whole height, at the right edge
    ],
)
def test_labels_stay_inside_the_frame_at_its_edges(person):
    tubes = [(label, 0.9 - 0.1 * label, tube(person)) for label in (3, 5, 6)]
    drawing = render_tubes(blank_frames(), tubes, CLASS_NAMES)
    assert len(drawing.labels[0]) == 3
    assert_layout(drawing, 0)


def test_two_overlapping_persons_with_two_tubes_each():
    first, second = (60, 30, 90, 85), (75, 35, 105, 90)
    tubes = [
        (0, 0.9, tube(first, frames=(1, 2))),
        (3, 0.8, tube(second, frames=(1, 2))),
        (4, 0.7, tube(first, frames=(1,))),
        (2, 0.6, tube(second, frames=(2,))),
    ]
    drawing = render_tubes(blank_frames(2), tubes, CLASS_NAMES)
    assert [label.tube_id for label in drawing.labels[0]] == [0, 1, 2]
    assert [label.tube_id for label in drawing.labels[1]] == [0, 1, 3]
    for frame_index in range(2):
        assert_layout(drawing, frame_index)
        for label in drawing.labels[frame_index]:
            assert dominant_colour(drawing.frames[frame_index], label.rect) == tube_colour(
                label.tube_id
            )


def test_frames_without_tubes_are_left_as_they_were():
    tubes = [(0, 0.9, tube((10, 10, 40, 60), frames=(2,)))]
    frames = blank_frames(3)
    drawing = render_tubes(frames, tubes, CLASS_NAMES)
    assert drawing.labels[0] == [] and drawing.legends[0] is None
    assert np.all(drawing.frames[0] == BACKGROUND) and np.all(drawing.frames[2] == BACKGROUND)
    assert drawing.labels[1] and drawing.legends[1] is not None


def test_legend_takes_the_corner_the_tubes_leave_free():
    # A player standing in the bottom-right corner on both frames: the legend goes elsewhere.
    person = (130, 40, 192, 96)
    tubes = [(0, 0.9, tube(person, frames=(1, 2)))]
    drawing = render_tubes(blank_frames(2), tubes, CLASS_NAMES)
    legend = drawing.legends[0]
    scaled = [round(v * drawing.scale) for v in person]
    assert not tubes_module.rects_overlap(legend, tuple(scaled))
    assert drawing.legends[1] == legend  # the same place on every frame


def test_no_legend_when_switched_off():
    tubes = [(0, 0.9, tube((10, 10, 40, 60)))]
    drawing = render_tubes(blank_frames(), tubes, CLASS_NAMES, legend=False)
    assert drawing.legends == [None] and len(drawing.labels[0]) == 1


def test_a_label_wider_than_the_frame_is_cut_to_fit():
    names = ['a class name far too long to be written across a frame of this width']
    drawing = render_tubes(blank_frames(width=96), [(0, 0.9, tube((10, 10, 40, 60)))], names)
    label = drawing.labels[0][0]
    assert label.text.endswith(tubes_module.ELLIPSIS) and len(label.text) < len(names[0])
    assert_layout(drawing, 0)


def test_every_tube_of_a_crowded_video_has_its_own_colour():
    colours = [tube_colour(i) for i in range(40)]
    assert len(set(colours)) == len(colours)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 470),  # x1
            st.integers(0, 230),  # y1
            st.integers(1, 120),  # label width: at most a quarter of the frame's
            st.integers(1, 24),  # label height: at most a tenth of the frame's
        ),
        min_size=1,
        max_size=6,
    )
)
def test_labels_never_overlap_when_the_frame_has_room(specs):
    """Up to 6 labels, each at most a quarter of the frame wide and a tenth high: the
    labels placed before one rule out less than half the frame, so a free spot exists,
    and the search finds it."""
    frame = (480, 240)
    anchors = [(x, y, x + 10, y + 10) for x, y, _, _ in specs]
    sizes = [(w, h) for _, _, w, h in specs]
    rects = place_labels(anchors, sizes, frame)
    for (x1, y1, x2, y2), (w, h) in zip(rects, sizes):
        assert (x2 - x1, y2 - y1) == (w, h)
        assert 0 <= x1 and x2 <= frame[0] and 0 <= y1 and y2 <= frame[1]
    for a, b in itertools.combinations(rects, 2):
        assert not tubes_module.rects_overlap(a, b), (a, b)
