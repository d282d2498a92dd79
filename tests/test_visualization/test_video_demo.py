"""tools/demo/demo_video.py on generated mp4 files with the tiny model."""

import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from pcca_plugin.utils.pickle_io import dump_pickle
from pcca_plugin.visualization.tubes import MIN_DRAW_HEIGHT, read_video_frames
from pcca_plugin.visualization.video_demo import VideoReadError, clip_indices

from .helpers import REPO_ROOT, TINY_PCCA, load_tool

demo = load_tool('tools/demo/demo_video.py', 'pcca_tools_demo_video')

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
    result = demo.main(
        [
            str(video),
            TINY_PCCA,
            checkpoint,
            '--proposals',
            str(tmp_path / 'proposals.pkl'),
            '--out',
            str(out),
            '--json',
            str(out_json),
            '--short-side',
            '64',
            '--class-names',
            str(names),
            '--len-thr',
            '5',
            '--tube-score-thr',
            '0',
            '--batch-size',
            '3',
            '--no-progress',
        ]
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


def test_unreadable_video_is_a_clear_error(tmp_path, tiny_checkpoint):
    video = tmp_path / 'broken.mp4'
    video.write_bytes(b'this is not a video' * 100)
    dump_pickle({1: np.zeros((0, 5), np.float32)}, str(tmp_path / 'p.pkl'))
    with pytest.raises(VideoReadError, match=r'broken\.mp4: neither OpenCV nor decord'):
        demo.main(
            [
                str(video),
                TINY_PCCA,
                tiny_checkpoint,
                '--proposals',
                str(tmp_path / 'p.pkl'),
                '--out',
                str(tmp_path / 'o.mp4'),
                '--no-progress',
            ]
        )
    assert not osp.exists(tmp_path / 'o.mp4')


def test_proposals_of_another_video_are_named(tmp_path, tiny_checkpoint):
    video = tmp_path / 'clip.mp4'
    write_video(video, 6, 64, 96, 25)
    dump_pickle({'other/video,00001': np.zeros((0, 5), np.float32)}, str(tmp_path / 'p.pkl'))
    with pytest.raises(KeyError, match="no key names video 'clip'.*--video-name"):
        demo.main(
            [
                str(video),
                TINY_PCCA,
                tiny_checkpoint,
                '--proposals',
                str(tmp_path / 'p.pkl'),
                '--out',
                str(tmp_path / 'o.mp4'),
                '--no-progress',
            ]
        )


def test_demo_with_an_mmdet_person_detector(tmp_path, tiny_checkpoint):
    """--det-config/--det-checkpoint: the persons of every tube come from the mmdet detector."""
    from mmdet.registry import MODELS as DET_MODELS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from pcca_plugin.proposals.detector import PersonDetector

    det_config = osp.join(
        REPO_ROOT, 'configs', 'det', 'faster-rcnn_r18-fpn_1xb2-4iter_toysports-person.py'
    )
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
    result = demo.main(
        [
            str(video),
            TINY_PCCA,
            tiny_checkpoint,
            '--det-config',
            det_config,
            '--det-checkpoint',
            str(det_checkpoint),
            '--person-score-thr',
            '0.3',
            '--out',
            str(tmp_path / 'out.mp4'),
            '--json',
            str(out_json),
            '--short-side',
            '64',
            '--len-thr',
            '2',
            '--tube-score-thr',
            '0',
            '--no-progress',
        ]
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
