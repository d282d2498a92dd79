"""Train+val training: the val half trains on val's annotated key frames (the train rule)."""

import copy
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

from pcca_plugin.datasets import MultiSportsDataset
from pcca_plugin.datasets.preparation import build_split_annotation, prepare_multisports
from pcca_plugin.utils.pickle_io import load_pickle

#: Keep frames without proposals, so that the counts are the key-frame rule's alone.
KEEP = dict(empty_proposal_policy='keep')


@pytest.fixture(scope='module')
def prepared(small_toy, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('annotations'))
    files = prepare_multisports(small_toy['gt_file'], small_toy['proposal_files'], out, name='toy')
    return dict(small_toy, **files, gt=load_pickle(small_toy['gt_file']))


def _annotated_frames(gt, videos):
    """Frames of ``videos`` that some GT tube covers, from the GT file directly."""
    frames = set()
    for video in videos:
        for tubes in gt['gttubes'].get(video, {}).values():
            frames.update((video, int(f)) for tube in tubes for f in tube[:, 0])
    return frames


def _dataset(prepared, split, **kwargs):
    return MultiSportsDataset(
        ann_file=prepared[split],
        proposal_file=prepared[f'proposals_{split}'],
        pipeline=[],
        data_prefix=dict(img=osp.join(prepared['root'], 'rawframes')),
        **KEEP,
        **kwargs,
    )


def test_val_trains_on_its_annotated_key_frames(prepared):
    gt = prepared['gt']
    val_videos = gt['test_videos'][0]
    every_frame = _dataset(prepared, 'val')
    annotated = _dataset(prepared, 'val', key_frames='annotated')
    expected = _annotated_frames(gt, val_videos)
    got = {
        (d['video_id'], d['timestamp']) for d in map(annotated.get_data_info, range(len(annotated)))
    }
    assert got == expected
    assert len(every_frame) == sum(gt['nframes'][v] for v in val_videos) > len(annotated)
    # The same rule as the train split: the preparation's 'annotated' rule applied to val videos.
    as_train = dict(copy.deepcopy(gt), train_videos=[list(val_videos)])
    train_rule = build_split_annotation(as_train, 'train', train_frames='annotated')
    assert len(annotated) == sum(len(v['keyframes']) for v in train_rule['videos'].values())
    # And on the train split the rule changes nothing.
    assert len(_dataset(prepared, 'train', key_frames='annotated')) == len(
        _dataset(prepared, 'train')
    )
    with pytest.raises(ValueError, match="key_frames must be one of.*'every'"):
        _dataset(prepared, 'val', key_frames='every')


def _trainval_configs(repo_root):
    paths = sorted(glob.glob(osp.join(repo_root, 'configs', 'pcca', '*train+val*.py')))
    assert paths, 'no train+val config under configs/pcca'
    return paths


def _val_halves(cfg):
    """Datasets of the training set that read the val annotation file."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get('ann_file') == cfg.ann_file_val:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)

    walk(cfg.train_dataloader.dataset)
    return found


def test_trainval_configs_use_the_train_rule_on_val(repo_root, prepared):
    for path in _trainval_configs(repo_root):
        cfg = Config.fromfile(path)
        halves = _val_halves(cfg)
        assert halves, f'{path}: the training set has no val half'
        assert all(half.get('key_frames') == 'annotated' for half in halves), path
    # Built on the toy data, the train+val set of the config has train's key frames plus
    # val's annotated frames.
    cfg = Config.fromfile(_trainval_configs(repo_root)[0])
    init_default_scope('mmaction')
    concat = copy.deepcopy(cfg.train_dataloader.dataset)
    for part, split in zip(concat.datasets, ('train', 'val')):
        part.update(
            ann_file=prepared[split],
            proposal_file=prepared[f'proposals_{split}'],
            data_prefix=dict(img=osp.join(prepared['root'], 'videos')),
            num_classes=len(prepared['gt']['labels']),
            **KEEP,
        )
    from mmaction.registry import DATASETS

    dataset = DATASETS.build(concat)
    gt = prepared['gt']
    train_keyframes = sum(
        len(v['keyframes']) for v in load_pickle(prepared['train'])['videos'].values()
    )
    assert len(dataset) == train_keyframes + len(_annotated_frames(gt, gt['test_videos'][0]))
