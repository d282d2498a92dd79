"""The video demo (``tools/demo/demo_video.py``) on generated mp4 files with the tiny model."""

import json
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from pcca_plugin.testing import repo_path, run_tool, subprocess_env
from pcca_plugin.testing.inference import TINY_PCCA
from pcca_plugin.utils.pickle_io import dump_pickle
from pcca_plugin.visualization.tubes import MIN_DRAW_HEIGHT, read_video_frames
from pcca_plugin.visualization.video_demo import VideoReadError, clip_indices, demo_video_file

CLASS_NAMES = ['run left', 'run right', 'jump', 'red', 'blue', 'shuffle', 'red+blue']
PERSON_SIZE = (0.25, 0.5)  # width, height as fractions of the frame


def write_video(path, num_frames, height, width, fps):
    """Two 'players' walking across a noisy field; returns their normalised boxes per frame."""
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), fps, (width, height))
    assert writer.isOpened()
    boxes = {}
    for t in range(num_frames):
        frame = rng.integers(60, 100, (height, width, 3), dtype=np.uint8)
        frame_boxes = []
        for player, start in enumerate((0.05, 0.6)):
            x1 = start + 0.01 * t * (1 if player == 0 else -1)
            y1 = 0.3
            box = np.array([x1, y1, x1 + PERSON_SIZE[0], y1 + PERSON_SIZE[1]])
            px = (box * [width, height, width, height]).astype(int)
            cv2.rectangle(frame, tuple(px[:2]), tuple(px[2:]), (255, 255, 255), -1)
            frame_boxes.append(list(box) + [0.9])
        writer.write(frame)
        boxes[t + 1] = np.array(frame_boxes, dtype=np.float32)
    writer.release()
    return boxes


def run_demo(tmp_path, checkpoint, num_frames, height, width, fps, keyed_by_name=False):
    video = tmp_path / 'clip.mp4'
    boxes = write_video(video, num_frames, height, width, fps)
    proposals = {(f'clip,{f:05d}' if keyed_by_name else f): b for f, b in boxes.items()}
    dump_pickle(proposals, str(tmp_path / 'proposals.pkl'))
    names = tmp_path / 'names.json'
    names.write_text(json.dumps(CLASS_NAMES))
    out, out_json = tmp_path / 'out.mp4', tmp_path / 'tubes.json'
    result = demo_video_file(
        str(video),
        TINY_PCCA,
        checkpoint,
        proposal_file=str(tmp_path / 'proposals.pkl'),
        out=str(out),
        json_out=str(out_json),
        short_side=64,
        class_names_file=str(names),
        len_thr=5,
        tube_score_thr=0,
        batch_size=3,
        progress=False,
    )
    return boxes, out, json.loads(out_json.read_text()), result


@pytest.mark.parametrize(
    'num_frames, height, width, fps, keyed_by_name',
    [(20, 240, 320, 25.0, False), (13, 100, 150, 12.0, True)],
)
def test_demo_writes_video_and_tubes(
    tmp_path, tiny_checkpoint, num_frames, height, width, fps, keyed_by_name
):
    boxes, out, tubes_json, result = run_demo(
        tmp_path, tiny_checkpoint, num_frames, height, width, fps, keyed_by_name
    )
    capture = cv2.VideoCapture(str(out))
    written = 0
    while capture.read()[0]:
        written += 1
    out_fps = capture.get(cv2.CAP_PROP_FPS)
    out_size = (
        int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
    )
    capture.release()
    scale = max(1.0, MIN_DRAW_HEIGHT / height)
    assert written == num_frames
    assert out_fps == pytest.approx(fps)
    assert out_size == (int(round(height * scale)), int(round(width * scale)))
    assert tubes_json['num_frames'] == num_frames
    assert (tubes_json['height'], tubes_json['width']) == (height, width)
    tubes = tubes_json['tubes']
    assert tubes, 'two players in every frame should give tubes'
    assert [t['id'] for t in tubes] == list(range(len(tubes)))
    scores = [t['score'] for t in tubes]
    assert scores == sorted(scores, reverse=True)
    size = np.array([width, height, width, height])
    for tube in tubes:
        assert tube['label_name'] == CLASS_NAMES[tube['label']]
        frames = tube['frames']
        assert frames == list(range(frames[0], frames[0] + len(frames)))
        assert 1 <= frames[0] and frames[-1] <= num_frames and len(frames) >= 5
        for frame, box in zip(frames, tube['boxes']):
            # Every tube box is one of the given person boxes of its frame (in pixels).
            gaps = np.abs(boxes[frame][:, :4] * size - np.array(box)).max(axis=1)
            assert gaps.min() < 0.01, (frame, box)
        assert np.mean(tube['box_scores']) == pytest.approx(tube['score'], abs=1e-3)
    assert result.throughput > 0


def test_clip_indices_follow_sample_ava_frames():
    # SampleAVAFrames (test mode): start = c - (L // 2) * interval, clamped to the video.
    np.testing.assert_array_equal(clip_indices(0, 10, 4, 2), [0, 0, 0, 2])
    np.testing.assert_array_equal(clip_indices(5, 10, 4, 2), [1, 3, 5, 7])
    np.testing.assert_array_equal(clip_indices(9, 10, 4, 3), [3, 6, 9, 9])


def demo_with_proposal_file(tmp_path, video, checkpoint):
    """The demo of ``video`` with the persons of ``tmp_path/p.pkl``, out to ``tmp_path/o.mp4``."""
    return demo_video_file(
        str(video),
        TINY_PCCA,
        checkpoint,
        proposal_file=str(tmp_path / 'p.pkl'),
        out=str(tmp_path / 'o.mp4'),
        progress=False,
    )


def test_unreadable_video_is_a_clear_error(tmp_path, tiny_checkpoint):
    video = tmp_path / 'broken.mp4'
    video.write_bytes(b'this is not a video' * 100)
    dump_pickle({1: np.zeros((0, 5), np.float32)}, str(tmp_path / 'p.pkl'))
    with pytest.raises(VideoReadError, match=r'broken\.mp4: neither OpenCV nor decord'):
        demo_with_proposal_file(tmp_path, video, tiny_checkpoint)
    assert not osp.exists(tmp_path / 'o.mp4')


def test_proposals_of_another_video_are_named(tmp_path, tiny_checkpoint):
    video = tmp_path / 'clip.mp4'
    write_video(video, 6, 64, 96, 25)
    dump_pickle({'other/video,00001': np.zeros((0, 5), np.float32)}, str(tmp_path / 'p.pkl'))
    with pytest.raises(KeyError, match="no key names video 'clip'.*--video-name"):
        demo_with_proposal_file(tmp_path, video, tiny_checkpoint)


def test_demo_with_an_mmdet_person_detector(tmp_path, tiny_checkpoint):
    """--det-config/--det-checkpoint: the persons of every tube come from the mmdet detector."""
    from mmdet.registry import MODELS as DET_MODELS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from pcca_plugin.proposals.detector import PersonDetector

    det_config = repo_path('configs', 'det', 'faster-rcnn_r18-fpn_1xb2-4iter_toysports-person.py')
    # A randomly initialised (seeded) person detector: its scores sit near 0.5, so a
    # person threshold of 0.3 keeps boxes in every frame.
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        detector = DET_MODELS.build(Config.fromfile(det_config).model)
    detector.init_weights()
    det_checkpoint = tmp_path / 'person_r18_random.pth'
    meta = {'dataset_meta': {'classes': ('person',)}}
    torch.save({'state_dict': detector.state_dict(), 'meta': meta}, str(det_checkpoint))
    num_frames, height, width = 8, 96, 128
    video = tmp_path / 'clip.mp4'
    write_video(video, num_frames, height, width, 25)
    out_json = tmp_path / 'tubes.json'
    result = demo_video_file(
        str(video),
        TINY_PCCA,
        tiny_checkpoint,
        det_config=det_config,
        det_checkpoint=str(det_checkpoint),
        person_score_thr=0.3,
        out=str(tmp_path / 'out.mp4'),
        json_out=str(out_json),
        short_side=64,
        len_thr=2,
        tube_score_thr=0,
        progress=False,
    )
    assert result.num_frames == num_frames and osp.getsize(tmp_path / 'out.mp4') > 0
    # The same detector run directly on the decoded frames.
    frames = list(read_video_frames(str(video)))
    detections = PersonDetector(det_config, str(det_checkpoint)).detect(frames)
    tubes = json.loads(out_json.read_text())['tubes']
    assert tubes, 'a detector with scores near 0.5 and threshold 0.3 should give tubes'
    size = np.array([width, height, width, height])
    for tube in tubes:
        for frame, box in zip(tube['frames'], tube['boxes']):
            kept = detections[frame - 1]
            kept = kept[kept[:, 4] >= 0.3]
            gaps = np.abs(kept[:, :4] * size - np.array(box)).max(axis=1)
            assert gaps.min() < 0.01, (frame, box)


def test_the_command_line_runs_the_demo_and_reports_bad_input(tmp_path, tiny_checkpoint):
    """tools/demo/demo_video.py as a user runs it: a written video; a missing one in one line."""
    video = tmp_path / 'clip.mp4'
    boxes = write_video(video, 8, 64, 96, 25)
    dump_pickle(boxes, str(tmp_path / 'p.pkl'))
    out = tmp_path / 'out.mp4'
    common = ['--proposals', str(tmp_path / 'p.pkl'), '--out', str(out), '--no-progress']
    result = run_tool('demo/demo_video.py', str(video), TINY_PCCA, tiny_checkpoint, *common)
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'clip.mp4: 8 frames 96x64' in result.stdout and osp.getsize(out) > 0
    missing = str(tmp_path / 'absent.mp4')
    result = run_tool('demo/demo_video.py', missing, TINY_PCCA, tiny_checkpoint, *common)
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f'demo_video.py: error: {missing}: no such video file '
        '(rerun with --debug for the traceback)'
    )
    result = run_tool('demo/demo_video.py', missing, TINY_PCCA, tiny_checkpoint, *common, '--debug')
    assert result.returncode == 1
    assert 'Traceback (most recent call last)' in result.stderr
    assert f'FileNotFoundError: {missing}: no such video file' in result.stderr


#: A fresh interpreter that imports only the demo's module, builds the tiny PCCA detector,
#: then registers the plugin's components and builds it again.
UNREGISTERED_BUILD = """
import sys
import pcca_plugin.visualization.video_demo as video_demo
try:
    video_demo.build_action_detector(sys.argv[1], None)
except KeyError as error:
    print('before registration:', error)
else:
    print('before registration: built')
import pcca_plugin
pcca_plugin.register_all_modules()
video_demo.build_action_detector(sys.argv[1], None)
print('after registration: built')
"""


def test_building_before_registration_says_what_to_call():
    """The demo's entry point builds with build_registered: a forgotten
    pcca_plugin.register_all_modules() is named in the error, and the call fixes it."""
    result = subprocess.run(
        [sys.executable, '-c', UNREGISTERED_BUILD, TINY_PCCA],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if ' registration: ' in line]
    before, after = lines  # the model's init log prints to stdout too
    assert before.startswith('before registration:') and 'PCCARoIHead' in before, before
    assert 'call pcca_plugin.register_all_modules()' in before
    assert after == 'after registration: built'
