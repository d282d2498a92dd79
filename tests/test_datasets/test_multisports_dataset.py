"""MultiSportsDataset on generated data, prepared by the tool, read by a real DataLoader."""

import copy
import os.path as osp
import shutil
from collections import Counter

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from pcca_plugin.datasets import MultiSportsDataset, prepare_multisports
from pcca_plugin.utils.multisports_format import frame_key
from pcca_plugin.utils.pickle_io import dump_pickle, load_pickle

THR = 0.6
CLIP_LEN, INTERVAL = 32, 2  # the paper's clip
TOY_CLIP_LEN, TOY_INTERVAL = 8, 1  # toy videos are 24 frames long (see the toy config)
TOY_CONFIG = 'configs/_base_/datasets/toy-sports_rgb.py'


@pytest.fixture(scope='module')
def prepared(small_toy, tmp_path_factory):
    """Run the preparation (what ``prepare_multisports.py`` runs) on the generated data."""
    out = str(tmp_path_factory.mktemp('annotations'))
    prepare_multisports(small_toy['gt_file'], small_toy['proposal_files'], out, name='toy')
    return dict(
        small_toy,
        ann_dir=out,
        gt=load_pickle(small_toy['gt_file']),
        raw_proposals={
            k: v for p in small_toy['proposal_files'] for k, v in load_pickle(p).items()
        },
    )


def _loader_cfg(prepared, repo_root, split, **dataset_overrides):
    init_default_scope('mmaction')
    cfg = Config.fromfile(osp.join(repo_root, TOY_CONFIG))
    loader = copy.deepcopy(cfg[f'{split}_dataloader'])
    loader.batch_size = 4
    loader.sampler = dict(type='DefaultSampler', shuffle=False)
    name = 'train' if split == 'train' else 'val'
    loader.dataset.ann_file = osp.join(prepared['ann_dir'], f'toy_{name}.pkl')
    loader.dataset.proposal_file = osp.join(prepared['ann_dir'], f'toy_dense_proposals_{name}.pkl')
    loader.dataset.data_prefix = dict(img=osp.join(prepared['root'], 'rawframes'))
    loader.dataset.update(dataset_overrides)
    return loader


def _frame_rgb(prepared, video, frame):
    path = osp.join(prepared['root'], 'rawframes', video, f'img_{frame:05d}.jpg')
    return cv2.imread(path)[:, :, ::-1]


def _gt_on_frame(gt, video, frame):
    """Pixel boxes (K, 4) and labels (K,) of the GT tubes on ``frame``."""
    boxes, labels = [], []
    for label, tubes in gt['gttubes'][video].items():
        for tube in tubes:
            rows = tube[tube[:, 0] == frame]
            boxes += [r[1:5] for r in rows]
            labels += [label] * len(rows)
    return np.array(boxes).reshape(-1, 4), np.array(labels, dtype=int)


def _expected_proposals(prepared, key):
    boxes = prepared['raw_proposals'].get(key, np.zeros((0, 5), np.float32))
    boxes = boxes[boxes[:, 4] >= THR]
    return boxes[np.argsort(-boxes[:, 4], kind='stable')]


def test_train_loader_matches_the_gt(prepared, repo_root):
    loader = Runner.build_dataloader(_loader_cfg(prepared, repo_root, 'train'), seed=0)
    gt = prepared['gt']
    annotated = {
        frame_key(v, int(f))
        for v in gt['train_videos'][0]
        for tubes in gt['gttubes'][v].values()
        for t in tubes
        for f in t[:, 0]
    }
    seen = set()
    for batch in loader:
        for clip, sample in zip(batch['inputs'], batch['data_samples']):
            video, frame = sample.video_id, sample.timestamp
            key = frame_key(video, frame)
            seen.add(key)
            height, width = gt['resolution'][video]
            assert tuple(clip.shape) == (3, TOY_CLIP_LEN, height, width)  # (C, T, H, W)
            assert sample.ori_shape == (height, width) and sample.img_shape == (height, width)
            # Training jitters each index by -1 or 0 frames (SampleAVAFrames).
            middle = clip[:, TOY_CLIP_LEN // 2].permute(1, 2, 0).numpy()
            candidates = [_frame_rgb(prepared, video, f) for f in (max(frame - 1, 1), frame)]
            assert any(np.array_equal(middle, c) for c in candidates)
            # Proposals: the file's boxes with score >= 0.6, in pixels, with their scores.
            expected = _expected_proposals(prepared, key)
            scale = np.array([width, height, width, height])
            np.testing.assert_allclose(
                sample.proposals.bboxes.numpy(), expected[:, :4] * scale, rtol=1e-5
            )
            np.testing.assert_array_equal(sample.proposal_scores, expected[:, 4])
            # GT boxes and multi-hot labels.
            gt_boxes, gt_labels = _gt_on_frame(gt, video, frame)
            boxes = sample.gt_instances.bboxes.numpy()
            labels = sample.gt_instances.labels.numpy()
            assert labels.shape == (len(gt_boxes), len(gt['labels']))
            for box, label in zip(gt_boxes, gt_labels):
                row = np.flatnonzero(np.abs(boxes - box).max(1) < 1e-3)
                assert len(row) == 1 and labels[row[0], label] == 1 and labels[row[0]].sum() == 1
    dataset = loader.dataset
    assert seen == annotated - set(dataset.skipped_frames)
    expected_counts = Counter()
    for idx in range(len(dataset)):
        info = dataset.get_data_info(idx)
        _, gt_labels = _gt_on_frame(gt, info['video_id'], info['timestamp'])
        assert dataset.get_cat_ids(idx) == sorted(set(gt_labels.tolist()))
        expected_counts.update(set(gt_labels.tolist()))
    assert dataset.class_counts() == expected_counts


def test_val_iterates_every_frame_and_clamps_the_clip(prepared, repo_root):
    cfg = _loader_cfg(prepared, repo_root, 'val', empty_proposal_policy='keep')
    loader = Runner.build_dataloader(cfg, seed=0)
    gt = prepared['gt']
    videos = gt['test_videos'][0]
    dataset = loader.dataset
    assert len(dataset) == sum(gt['nframes'][v] for v in videos)
    keys = [
        frame_key(dataset.get_data_info(i)['video_id'], dataset.get_data_info(i)['timestamp'])
        for i in range(len(dataset))
    ]
    assert keys == [frame_key(v, f) for v in videos for f in range(1, gt['nframes'][v] + 1)]
    strided = Runner.build_dataloader(
        _loader_cfg(prepared, repo_root, 'val', frame_stride=5, empty_proposal_policy='keep'),
        seed=0,
    )
    assert [strided.dataset.get_data_info(i)['timestamp'] for i in range(3)] == [1, 6, 11]

    batch = next(iter(loader))
    clip, sample = batch['inputs'][2], batch['data_samples'][2]  # frame 3 of the first video
    assert (sample.video_id, sample.timestamp) == (videos[0], 3)
    nframes = gt['nframes'][videos[0]]
    # The toy clip around the 0-based key index 2, clamped to [0, nframes - 1].
    offsets = (np.arange(TOY_CLIP_LEN) - TOY_CLIP_LEN // 2) * TOY_INTERVAL
    indices = np.clip(2 + offsets, 0, nframes - 1)
    for t, index in enumerate(indices):
        expected = _frame_rgb(prepared, videos[0], int(index) + 1)
        assert np.array_equal(clip[:, t].permute(1, 2, 0).numpy(), expected), t
    assert indices[0] == 0 and indices[1] == 0  # the border frame repeats


@pytest.mark.parametrize('decoder', ['decord', 'opencv'])
def test_videos_give_the_same_samples_as_raw_frames(prepared, repo_root, decoder):
    cfg = _loader_cfg(prepared, repo_root, 'val')
    frames_cfg = dict(cfg.dataset)
    frames_cfg.pop('type')
    frames_set = MultiSportsDataset(**frames_cfg)
    init, decode = (
        ([dict(type='DecordInit')], [dict(type='DecordDecode')])
        if decoder == 'decord'
        else ([], [dict(type='OpenCVDecodeClip')])
    )
    sample = dict(
        type='SampleAVAFrames', clip_len=TOY_CLIP_LEN, frame_interval=TOY_INTERVAL, test_mode=True
    )
    pack = [
        dict(type='FormatShape', input_format='NCTHW', collapse=True),
        dict(
            type='PackActionInputs',
            meta_keys=('img_shape', 'ori_shape', 'video_id', 'timestamp', 'proposal_scores'),
        ),
    ]
    video_set = MultiSportsDataset(
        **dict(
            frames_cfg,
            use_frames=False,
            data_prefix=dict(img=osp.join(prepared['root'], 'videos')),
            pipeline=[*init, sample, *decode, *pack],
        )
    )
    assert len(video_set) == len(frames_set)
    for idx in (0, len(video_set) - 1):
        a, b = frames_set[idx], video_set[idx]
        assert a['inputs'].shape == b['inputs'].shape
        # mp4v and JPEG are both lossy: the same frames agree closely, not exactly.
        diff = (a['inputs'].float() - b['inputs'].float()).abs().mean().item()
        assert diff < 6.0, diff
        np.testing.assert_allclose(
            a['data_samples'].proposals.bboxes.numpy(),
            b['data_samples'].proposals.bboxes.numpy(),
            rtol=1e-5,
        )


def _with_proposal_file(prepared, tmp_path, edit):
    boxes = load_pickle(osp.join(prepared['ann_dir'], 'toy_dense_proposals_train.pkl'))
    edit(boxes)
    path = str(tmp_path / 'edited_proposals.pkl')
    dump_pickle(boxes, path)
    return path


def test_frames_without_proposals_are_never_given_a_full_frame_box(prepared, repo_root, tmp_path):
    train = load_pickle(osp.join(prepared['ann_dir'], 'toy_train.pkl'))
    video = next(iter(train['videos']))
    first, second = (frame_key(video, int(f)) for f in train['videos'][video]['keyframes'][:2])

    def edit(boxes):
        del boxes[first]  # no key at all
        boxes[second] = boxes[second].copy()
        boxes[second][:, 4] = THR / 2  # boxes, but all below the threshold

    path = _with_proposal_file(prepared, tmp_path, edit)
    base = _loader_cfg(prepared, repo_root, 'train').dataset
    base.pop('type')
    reference = MultiSportsDataset(**base)
    skipped = MultiSportsDataset(**dict(base, proposal_file=path))
    assert len(skipped) == len(reference) - 2
    assert {first, second} <= set(skipped.skipped_frames)
    kept = MultiSportsDataset(**dict(base, proposal_file=path, empty_proposal_policy='keep'))
    infos = {kept.get_data_info(i)['img_key']: kept.get_data_info(i) for i in range(len(kept))}
    for key in (first, second):
        assert infos[key]['proposals'].shape == (0, 4)
        assert infos[key]['proposal_scores'].shape == (0,)
        packed = kept[list(infos).index(key)]
        assert len(packed['data_samples'].proposals.bboxes) == 0
    with pytest.raises(ValueError, match=first.replace('/', '.')):
        MultiSportsDataset(**dict(base, proposal_file=path, empty_proposal_policy='error'))
    # Any frame keeps only boxes >= 0.6: no sample anywhere has a full-frame box.
    for i in range(len(reference)):
        info = reference.get_data_info(i)
        assert (info['proposal_scores'] >= THR).all()
        assert not np.any(np.all(info['proposals'] == [0, 0, 1, 1], axis=1))


def test_bad_inputs_name_the_item(prepared, repo_root, tmp_path):
    base = _loader_cfg(prepared, repo_root, 'train').dataset
    base.pop('type')
    train = load_pickle(osp.join(prepared['ann_dir'], 'toy_train.pkl'))
    video = list(train['videos'])[1]

    # A missing frame folder.
    frames = tmp_path / 'rawframes'
    shutil.copytree(osp.join(prepared['root'], 'rawframes'), frames)
    shutil.rmtree(frames / video)
    with pytest.raises(FileNotFoundError, match=video):
        MultiSportsDataset(**dict(base, data_prefix=dict(img=str(frames))))

    # A missing video and an unreadable one.
    videos = tmp_path / 'videos'
    shutil.copytree(osp.join(prepared['root'], 'videos'), videos)
    (videos / (video + '.mp4')).unlink()
    video_cfg = dict(base, use_frames=False, data_prefix=dict(img=str(videos)))
    with pytest.raises(FileNotFoundError, match=video):
        MultiSportsDataset(**video_cfg)
    (videos / (video + '.mp4')).write_bytes(b'\x00garbage' * 64)
    video_cfg['pipeline'] = [
        dict(type='SampleAVAFrames', clip_len=4, frame_interval=1),
        dict(type='OpenCVDecodeClip'),
    ]
    dataset = MultiSportsDataset(**video_cfg)
    index = next(i for i in range(len(dataset)) if dataset.get_data_info(i)['video_id'] == video)
    with pytest.raises(OSError, match=video):
        dataset.prepare_data(index)

    # A proposal key that names no video of the split.
    path = _with_proposal_file(
        prepared,
        tmp_path,
        lambda b: b.update({'toysport/v_unknown,0001': np.zeros((0, 5), np.float32)}),
    )
    with pytest.raises(KeyError, match='v_unknown,0001'):
        MultiSportsDataset(**dict(base, proposal_file=path))

    # Not an annotation file (e.g. the raw GT given by mistake).
    with pytest.raises(ValueError, match='prepare_multisports.py'):
        MultiSportsDataset(**dict(base, ann_file=prepared['gt_file']))


def test_multi_label_person_gets_a_multi_hot_target(prepared, tmp_path):
    gt = copy.deepcopy(prepared['gt'])
    video = gt['train_videos'][0][0]
    label, tubes = next(iter(gt['gttubes'][video].items()))
    other = (label + 1) % len(gt['labels'])
    gt['gttubes'][video].setdefault(other, []).append(tubes[0].copy())  # same person, 2 labels
    dump_pickle(gt, tmp_path / 'gt.pkl')
    prepare_multisports(
        str(tmp_path / 'gt.pkl'), prepared['proposal_files'], str(tmp_path), name='ml'
    )
    dataset = MultiSportsDataset(
        ann_file=str(tmp_path / 'ml_train.pkl'),
        pipeline=[],
        proposal_file=str(tmp_path / 'ml_dense_proposals_train.pkl'),
        data_prefix=dict(img=osp.join(prepared['root'], 'rawframes')),
        empty_proposal_policy='keep',
    )
    frame = int(tubes[0][0, 0])
    info = next(
        dataset.get_data_info(i)
        for i in range(len(dataset))
        if dataset.get_data_info(i)['img_key'] == frame_key(video, frame)
    )
    row = np.flatnonzero(info['gt_labels'][:, label])
    assert len(row) == 1
    assert info['gt_labels'][row[0], other] == 1 and info['gt_labels'][row[0]].sum() == 2
    assert set(info['cat_ids']) >= {label, other}


@pytest.mark.parametrize('config', [TOY_CONFIG, 'configs/_base_/datasets/multisports_rgb.py'])
def test_dataset_configs_pass_detector_scores_to_the_evaluator(repo_root, config):
    cfg = Config.fromfile(osp.join(repo_root, config))
    assert cfg.val_evaluator.type == cfg.test_evaluator.type == 'MultiSportsTubeMetric'
    assert cfg.val_evaluator.gt_file.endswith('_GT.pkl')
    for split in ('train', 'val', 'test'):
        dataset = cfg[f'{split}_dataloader'].dataset
        assert dataset.type == 'MultiSportsDataset' and dataset.person_det_score_thr == THR
        assert dataset.get('test_mode', False) == (split != 'train')
        pack = dataset.pipeline[-1]
        assert pack.type == 'PackActionInputs'
        assert {'proposal_scores', 'video_id', 'timestamp', 'img_shape', 'ori_shape'} <= set(
            pack.meta_keys
        )
        sampling = next(t for t in dataset.pipeline if t.type == 'SampleAVAFrames')
        expected = (TOY_CLIP_LEN, TOY_INTERVAL) if config == TOY_CONFIG else (CLIP_LEN, INTERVAL)
        assert (sampling.clip_len, sampling.frame_interval) == expected
    # Toy classes 'run left' / 'run right' must not be flipped.
    if config == TOY_CONFIG:
        assert not any(t.type == 'Flip' for t in cfg.train_dataloader.dataset.pipeline)
