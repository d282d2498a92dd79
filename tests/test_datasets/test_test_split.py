"""The challenge test split: prepared from the videos alone, read by the dataset, bad input."""

import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest

from pcca_plugin.datasets import MultiSportsDataset
from pcca_plugin.datasets.preparation import (
    FrameCountError,
    decode_video,
    extract_frames,
    prepare_multisports_test,
)
from pcca_plugin.testing import run_tool
from pcca_plugin.utils.multisports_format import frame_key, parse_frame_key
from pcca_plugin.utils.pickle_io import dump_pickle, load_pickle

#: MJPG in AVI: OpenCV keeps the header's frame count when the tail of the file is cut.
AVI_SUFFIX, AVI_FOURCC, AVI_FPS = '.avi', 'MJPG', 10
#: Fraction of an AVI kept to truncate it (decodes fewer frames than its header says).
TRUNCATE_TO = 0.9


def _val_videos(small_toy):
    gt = load_pickle(small_toy['gt_file'])
    return gt, list(gt['test_videos'][0])


def _val_proposals(small_toy):
    return [p for p in small_toy['proposal_files'] if p.endswith('_val.pkl')]


def _copy_test_videos(small_toy, names, root):
    """The val videos as a test folder: ``root/<sport>/<video>.mp4`` (no GT anywhere)."""
    for name in names:
        target = osp.join(root, name + '.mp4')
        os.makedirs(osp.dirname(target), exist_ok=True)
        shutil.copy(osp.join(small_toy['root'], 'videos', name + '.mp4'), target)
    return root


def _write_avi(frame_dir, path):
    """An MJPG AVI of the JPEG frames of ``frame_dir`` (sorted)."""
    files = sorted(os.listdir(frame_dir))
    first = cv2.imread(osp.join(frame_dir, files[0]))
    os.makedirs(osp.dirname(path), exist_ok=True)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*AVI_FOURCC), AVI_FPS, first.shape[1::-1])
    for name in files:
        writer.write(cv2.imread(osp.join(frame_dir, name)))
    writer.release()


def _prepare_test(video_root, out, proposals, **options):
    """What ``prepare_multisports.py --split test`` runs."""
    return prepare_multisports_test(video_root, proposals, out, name='toy', **options)


def test_test_split_from_the_videos_alone(small_toy, tmp_path):
    gt, names = _val_videos(small_toy)
    video_root = _copy_test_videos(small_toy, names, str(tmp_path / 'test_videos'))
    frame_root = str(tmp_path / 'frames')
    written = _prepare_test(
        video_root,
        str(tmp_path / 'out'),
        _val_proposals(small_toy),
        frame_root=frame_root,
    )
    ann = load_pickle(written['test'])
    assert ann['split'] == 'test' and ann['labels'] is None and ann['annotations'] == {}
    # Order: the videos found under the root, sorted (the GT lists them in the same order).
    assert list(ann['videos']) == sorted(names) == names
    for name, info in ann['videos'].items():
        # Read from the video, and equal to what the GT (never read) says.
        assert info['nframes'] == gt['nframes'][name]
        assert tuple(info['resolution']) == tuple(gt['resolution'][name])
        np.testing.assert_array_equal(info['keyframes'], np.arange(1, gt['nframes'][name] + 1))
        assert len(os.listdir(osp.join(frame_root, name))) == gt['nframes'][name]
    raw = load_pickle(_val_proposals(small_toy)[0])
    boxes = load_pickle(written['proposals_test'])
    assert sorted(boxes) == sorted(raw)
    for key, value in raw.items():
        np.testing.assert_array_equal(boxes[key], np.asarray(value, np.float32).reshape(-1, 5))

    # The dataset reads it: every frame with a person box is a sample, without GT.
    dataset = MultiSportsDataset(
        ann_file=written['test'],
        proposal_file=written['proposals_test'],
        pipeline=[],
        data_prefix=dict(img=frame_root),
        num_classes=len(gt['labels']),
        test_mode=True,
    )
    expected = [
        key
        for key in sorted(raw)
        if len(raw[key]) and (np.asarray(raw[key])[:, 4] >= dataset.person_det_score_thr).any()
    ]
    assert sorted(dataset.get_data_info(i)['img_key'] for i in range(len(dataset))) == expected
    assert all(len(dataset.get_data_info(i)['gt_bboxes']) == 0 for i in range(len(dataset)))
    meta = dataset.metainfo
    assert list(meta['videos']) == names
    assert meta['nframes'] == {n: gt['nframes'][n] for n in names}
    assert 'classes' not in meta


def test_video_list_orders_the_split_and_gt_gives_class_names(small_toy, tmp_path):
    gt, names = _val_videos(small_toy)
    video_root = _copy_test_videos(small_toy, names, str(tmp_path / 'test_videos'))
    order = list(reversed(names))
    (tmp_path / 'videos.txt').write_text('# challenge order\n' + '\n'.join(order) + '\n')
    written = _prepare_test(
        video_root,
        str(tmp_path / 'out'),
        _val_proposals(small_toy),
        video_list=str(tmp_path / 'videos.txt'),
        labels_from=small_toy['gt_file'],
        frame_stride=4,
    )
    ann = load_pickle(written['test'])
    assert list(ann['videos']) == order
    assert ann['labels'] == list(gt['labels'])
    first = ann['videos'][order[0]]
    np.testing.assert_array_equal(first['keyframes'], np.arange(1, first['nframes'] + 1, 4))


def test_a_test_video_without_proposals_is_named_and_nothing_is_written(small_toy, tmp_path):
    _, names = _val_videos(small_toy)
    video_root = _copy_test_videos(small_toy, names, str(tmp_path / 'test_videos'))
    raw = load_pickle(_val_proposals(small_toy)[0])
    lonely = names[1]
    dump_pickle(
        {k: v for k, v in raw.items() if parse_frame_key(k)[0] != lonely}, tmp_path / 'p.pkl'
    )
    out = tmp_path / 'out'
    with pytest.raises(ValueError, match=f'no person box.*{lonely}.*generate_proposals'):
        _prepare_test(video_root, str(out), [str(tmp_path / 'p.pkl')])
    assert not out.exists() or os.listdir(out) == []
    # Person boxes of a video that is not in the test folder are refused too.
    stranger = dict(raw)
    stranger[frame_key('toysport/v_9999', 1)] = np.zeros((0, 5), np.float32)
    dump_pickle(stranger, tmp_path / 'q.pkl')
    with pytest.raises(KeyError, match='v_9999.*not a test video'):
        _prepare_test(video_root, str(out), [str(tmp_path / 'q.pkl')])
    assert not out.exists() or os.listdir(out) == []


def test_a_video_with_another_frame_count_is_named_and_nothing_is_written(small_toy, tmp_path):
    gt, names = _val_videos(small_toy)
    video_root = tmp_path / 'test_videos'
    for name in names:
        _write_avi(
            osp.join(small_toy['root'], 'rawframes', name), str(video_root / (name + AVI_SUFFIX))
        )
    bad = names[-1]
    path = video_root / (bad + AVI_SUFFIX)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * TRUNCATE_TO)])
    out, frame_root = tmp_path / 'out', tmp_path / 'frames'
    with pytest.raises(FrameCountError, match=rf'{bad}{AVI_SUFFIX}: decoded \d+ frames.*header'):
        _prepare_test(
            str(video_root),
            str(out),
            _val_proposals(small_toy),
            video_suffix=AVI_SUFFIX,
            frame_root=str(frame_root),
        )
    assert not out.exists() or os.listdir(out) == []
    # The videos decoded before it are complete; the bad one left no (partial) folder.
    for name in names[:-1]:
        assert len(os.listdir(frame_root / name)) == gt['nframes'][name]
    assert not (frame_root / bad).exists()
    assert not [n for n in os.listdir(frame_root / osp.dirname(bad)) if n.startswith('.')]
    # The intact AVI decodes fully and agrees with its header.
    probe = decode_video(str(video_root / (names[0] + AVI_SUFFIX)))
    assert probe.nframes == gt['nframes'][names[0]]
    assert probe.resolution == tuple(gt['resolution'][names[0]])


def test_trainval_frame_count_against_the_gt(small_toy, tmp_path):
    gt, names = _val_videos(small_toy)
    video = osp.join(small_toy['root'], 'videos', names[0] + '.mp4')
    frames = tmp_path / 'frames' / 'v'
    # More frames in the GT than in the video (and fewer) are both errors naming the video.
    for expected in (gt['nframes'][names[0]] + 1, gt['nframes'][names[0]] - 1):
        with pytest.raises(FrameCountError, match=f'{names[0]}.mp4: decoded .* GT nframes'):
            extract_frames(video, str(frames), expected_frames=expected)
        assert not frames.exists()
        assert os.listdir(frames.parent) == []
    # The tool checks every video (--count-frames) before writing any annotation, and says
    # which one in one line.
    gt['nframes'][names[0]] += 1
    dump_pickle(gt, tmp_path / 'gt.pkl')
    out = tmp_path / 'out'
    run = run_tool(
        'data/multisports/prepare_multisports.py',
        *['--gt', str(tmp_path / 'gt.pkl'), '--proposals', *small_toy['proposal_files']],
        *['--out-dir', str(out), '--video-root', osp.join(small_toy['root'], 'videos')],
        '--count-frames',
    )
    assert run.returncode == 1, run.stderr
    error_lines = [line for line in run.stderr.splitlines() if 'error:' in line]
    assert len(error_lines) == 1 and 'Traceback' not in run.stderr, run.stderr
    assert f'{names[0]}.mp4: decoded' in error_lines[0] and 'GT nframes' in error_lines[0]
    assert not out.exists()
