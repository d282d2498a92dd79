"""The video demo's benchmark (pcca_plugin.demo.benchmark): options, the video, the table.

The benchmark itself runs in tests/test_tools/test_benchmark_demo.py (``--quick``).
"""

import argparse

import cv2
import pytest

from pcca_plugin.demo import benchmark
from pcca_plugin.testing import repo_path


def test_a_video_size_is_height_by_width():
    assert benchmark.parse_size('96x192') == (96, 192)
    assert benchmark.parse_size('360X640') == (360, 640)


@pytest.mark.parametrize('text', ['96by192', '96x', '0x192'])
def test_a_bad_video_size_names_the_option(text):
    with pytest.raises(argparse.ArgumentTypeError, match=f"--video-size '{text}'"):
        benchmark.parse_size(text)


def test_a_config_spec_gives_short_side_and_frames_or_the_defaults():
    config = 'configs/pcca/pcca_slowfast-tiny_1xb8-8x1x1-5e_toy-sports-rgb.py'
    assert benchmark.parse_spec(f'{config}:96:8') == (repo_path(config), 96, 8)
    assert benchmark.parse_spec(config) == (
        repo_path(config),
        benchmark.DEFAULT_SHORT_SIDE,
        benchmark.DEFAULT_FRAMES,
    )


def test_a_missing_config_is_named():
    with pytest.raises(FileNotFoundError, match='--configs configs/nope.py: no such config'):
        benchmark.parse_spec('configs/nope.py')


def test_the_generated_video_has_two_persons_in_every_frame(tmp_path):
    path = str(tmp_path / 'bench.mp4')
    proposals = benchmark.make_video(path, num_frames=3, size=(48, 96))
    assert sorted(proposals) == [1, 2, 3]
    assert all(boxes.shape == (len(benchmark.PERSON_BOXES), 5) for boxes in proposals.values())
    capture = cv2.VideoCapture(path)
    ok, frame = capture.read()
    capture.release()
    assert ok and frame.shape == (48, 96, 3)


def test_the_table_has_one_column_per_documented_figure():
    row = {key: key.upper() for _, key in benchmark.COLUMNS}
    lines = benchmark.format_table([row]).splitlines()
    assert lines[0] == '| ' + ' | '.join(title for title, _ in benchmark.COLUMNS) + ' |'
    assert lines[2] == '| ' + ' | '.join(key.upper() for _, key in benchmark.COLUMNS) + ' |'
