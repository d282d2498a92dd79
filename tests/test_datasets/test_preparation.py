"""MultiSports preparation: frame annotations, proposal splitting and bad input."""

import copy
import os.path as osp

import numpy as np
import pytest

from pcca_plugin.datasets.preparation import (
    build_split_annotation,
    extract_frames,
    prepare_multisports,
    split_proposals,
    validate_gt,
)
from pcca_plugin.testing import run_tool
from pcca_plugin.testing.evaluation import make_preparation_gt
from pcca_plugin.utils.multisports_format import frame_key
from pcca_plugin.utils.pickle_io import dump_pickle, load_pickle

#: The preparation's command line, under tools/.
PREPARE_TOOL = 'data/multisports/prepare_multisports.py'


def test_train_annotation_merges_labels_of_one_person_and_normalises():
    gt = make_preparation_gt()
    validate_gt(gt, 'tiny')
    ann = build_split_annotation(gt, 'train')
    video = ann['videos']['a/v1']
    np.testing.assert_array_equal(video['keyframes'], np.arange(2, 9))  # annotated frames
    frame5 = ann['annotations'][frame_key('a/v1', 5)]
    np.testing.assert_allclose(frame5['bboxes'], [[0.1, 0.1, 0.3, 0.9]], rtol=1e-6)
    np.testing.assert_array_equal(frame5['labels'], [[1, 0, 1]])  # one person, two labels
    frame4 = ann['annotations'][frame_key('a/v1', 4)]
    assert frame4['bboxes'].shape == (2, 4)  # the second person stays separate
    np.testing.assert_array_equal(frame4['labels'].sum(0), [1, 0, 2])
    assert frame_key('a/v2', 1) not in ann['annotations']  # other split


def test_val_annotation_lists_every_frame_with_optional_stride():
    gt = make_preparation_gt()
    ann = build_split_annotation(gt, 'val')
    np.testing.assert_array_equal(ann['videos']['a/v2']['keyframes'], np.arange(1, 11))
    strided = build_split_annotation(gt, 'val', frame_stride=3)
    np.testing.assert_array_equal(strided['videos']['a/v2']['keyframes'], [1, 4, 7, 10])
    every = build_split_annotation(gt, 'train', train_frames='all')
    np.testing.assert_array_equal(every['videos']['a/v1']['keyframes'], np.arange(1, 11))


def test_tube_outside_the_video_names_video_label_and_tube():
    gt = make_preparation_gt()
    gt['gttubes']['a/v1'][2][1][:, 0] += 8  # frames 11..12 of a 10-frame video
    with pytest.raises(ValueError, match=r"video 'a/v1', label 2, tube 1.*outside the video"):
        validate_gt(gt, 'tiny_GT.pkl')
    gt = make_preparation_gt()
    gt['gttubes']['a/v1'][0][0] = gt['gttubes']['a/v1'][0][0][[0, 2, 3]]  # a gap
    with pytest.raises(ValueError, match='contiguous'):
        validate_gt(gt, 'tiny_GT.pkl')
    gt = make_preparation_gt()
    del gt['nframes']['a/v2']
    with pytest.raises(KeyError, match="video 'a/v2'.*'nframes'"):
        validate_gt(gt, 'tiny_GT.pkl')


def test_proposal_keys_must_match_gt_videos_and_frames():
    gt = make_preparation_gt()
    good = {
        frame_key('a/v1', 1): np.array([[0.1, 0.1, 0.3, 0.9, 0.9]]),
        frame_key('a/v2', 1): np.zeros((0, 5)),
    }
    split = split_proposals(good, gt, ['a/v1'])
    assert list(split) == [frame_key('a/v1', 1)] and split[frame_key('a/v1', 1)].dtype == np.float32
    with pytest.raises(KeyError, match=r"'v1,0001'.*names video 'v1'"):
        split_proposals({'v1,0001': good[frame_key('a/v1', 1)]}, gt, ['a/v1'], 'boxes.pkl')
    with pytest.raises(ValueError, match='frame 11, outside'):
        split_proposals({frame_key('a/v1', 11): np.zeros((0, 5))}, gt, ['a/v1'])
    with pytest.raises(ValueError, match='outside \\[0, 1\\]'):
        split_proposals({frame_key('a/v1', 2): np.array([[10, 10, 30, 40, 0.9]])}, gt, ['a/v1'])


def test_tool_writes_per_split_files(tmp_path):
    gt = make_preparation_gt()
    dump_pickle(gt, tmp_path / 'gt.pkl')
    boxes = {
        frame_key(v, f): np.array([[0.1, 0.1, 0.3, 0.9, 0.95]], np.float64)
        for v in ('a/v1', 'a/v2')
        for f in range(1, 11)
    }
    dump_pickle(boxes, tmp_path / 'boxes.pkl')
    run = run_tool(
        PREPARE_TOOL,
        *['--gt', str(tmp_path / 'gt.pkl'), '--proposals', str(tmp_path / 'boxes.pkl')],
        *['--out-dir', str(tmp_path / 'out'), '--name', 'tiny'],
    )
    assert run.returncode == 0, run.stderr
    val = load_pickle(str(tmp_path / 'out' / 'tiny_val.pkl'))
    assert val['split'] == 'val' and list(val['videos']) == ['a/v2']
    val_boxes = load_pickle(str(tmp_path / 'out' / 'tiny_dense_proposals_val.pkl'))
    assert sorted(val_boxes) == [frame_key('a/v2', f) for f in range(1, 11)]
    assert val_boxes[frame_key('a/v2', 1)].dtype == np.float32


def test_missing_and_unreadable_videos(tmp_path, small_toy):
    with pytest.raises(FileNotFoundError, match='nothere.mp4'):
        extract_frames(str(tmp_path / 'nothere.mp4'), str(tmp_path / 'frames'))
    broken = tmp_path / 'broken.mp4'
    broken.write_bytes(b'this is not a video' * 100)
    with pytest.raises(OSError, match='broken.mp4'):
        extract_frames(str(broken), str(tmp_path / 'frames'))
    # A real generated video decodes into as many JPEG frames as the GT says.
    gt = load_pickle(small_toy['gt_file'])
    video = gt['train_videos'][0][0]
    count = extract_frames(
        osp.join(small_toy['root'], 'videos', video + '.mp4'),
        str(tmp_path / 'frames'),
        expected_frames=gt['nframes'][video],
    )
    assert count == gt['nframes'][video]
    assert osp.isfile(tmp_path / 'frames' / 'img_00001.jpg')
    # The tool refuses a video folder that lacks a GT video, naming it.
    gt_copy = copy.deepcopy(gt)
    gt_copy['test_videos'][0].append('toysport/v_9999')
    gt_copy['nframes']['toysport/v_9999'] = 5
    gt_copy['resolution']['toysport/v_9999'] = (96, 192)
    dump_pickle(gt_copy, tmp_path / 'gt.pkl')
    run = run_tool(
        PREPARE_TOOL,
        *['--gt', str(tmp_path / 'gt.pkl'), '--proposals', *small_toy['proposal_files']],
        *['--out-dir', str(tmp_path / 'o'), '--video-root', osp.join(small_toy['root'], 'videos')],
    )
    assert run.returncode != 0 and 'v_9999.mp4' in run.stderr


def test_prepare_reports_frames_without_boxes(tmp_path):
    gt = make_preparation_gt()
    dump_pickle(gt, tmp_path / 'gt.pkl')
    dump_pickle(
        {frame_key('a/v2', 1): np.array([[0.1, 0.1, 0.3, 0.9, 0.95]])}, tmp_path / 'boxes.pkl'
    )
    written = prepare_multisports(
        str(tmp_path / 'gt.pkl'), [str(tmp_path / 'boxes.pkl')], str(tmp_path / 'out')
    )
    assert len(load_pickle(written['proposals_val'])) == 1
    assert load_pickle(written['proposals_train']) == {}
