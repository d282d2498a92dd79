"""Fixtures for the proposal tests: a tiny toy-sports dataset, its COCO conversion, a detector.

The dataset comes from the project's real generator (``pcca_plugin.datasets.toy_sports``):
MultiSports-format GT pickle, OpenCV-written mp4 videos and JPEG frame folders.
The detector is the R-18 person Faster R-CNN of ``configs/det`` trained for a
few iterations by mmengine's ``Runner`` on CPU (random init, nothing downloaded).
"""

import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from pcca_plugin.proposals.coco_format import write_coco_files
from pcca_plugin.testing.inference import R18_PERSON_CONFIG

#: Toy dataset size: enough for two validation videos and a few training batches.
TOY_SIZES = dict(
    num_train_videos=4, num_val_videos=2, num_frames=8, head_tube_len=(4, 6), tail_tube_len=(2, 3)
)
TOY_SEED = 0
COCO_PREFIX = 'toy_sports_person'
TRAIN_ITERS = 3


@pytest.fixture(scope='session')
def toy_data(tmp_path_factory) -> dict:
    """The toy-sports dataset: ``root``, ``gt_file``, ``gt`` (loaded), ``val_videos``."""
    from pcca_plugin.utils.pickle_io import load_pickle

    root = str(tmp_path_factory.mktemp('toy_sports'))
    from pcca_plugin.datasets.toy_sports import make_toy_sports

    summary = make_toy_sports(root, seed=TOY_SEED, prepare=False, **TOY_SIZES)
    gt = load_pickle(summary['gt_file'])
    return dict(
        root=root,
        gt_file=summary['gt_file'],
        gt=gt,
        train_videos=list(gt['train_videos'][0]),
        val_videos=list(gt['test_videos'][0]),
    )


@pytest.fixture(scope='session')
def toy_coco(toy_data) -> dict:
    """COCO person json files of the toy dataset: ``{'train': path, 'val': path}``.

    What ``tools/data/multisports/to_coco.py GT --out-dir DIR --prefix P --frame-root R`` writes.
    """
    out_dir = osp.join(toy_data['root'], 'annotations')
    written = write_coco_files(
        toy_data['gt_file'],
        out_dir,
        prefix=COCO_PREFIX,
        frame_root=osp.join(toy_data['root'], 'rawframes'),
    )
    return {split: coco_file.path for split, coco_file in written.items()}


def r18_config(toy_root: str, work_dir: str) -> Config:
    """The R-18 person detector config pointed at a toy dataset."""
    cfg = Config.fromfile(R18_PERSON_CONFIG)
    cfg.work_dir = work_dir
    data_root = toy_root.rstrip('/') + '/'
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = data_root
    cfg.val_evaluator.ann_file = data_root + cfg.val_dataloader.dataset.ann_file
    cfg.test_evaluator = cfg.val_evaluator
    cfg.train_cfg.max_iters = TRAIN_ITERS
    cfg.train_cfg.val_interval = TRAIN_ITERS
    cfg.default_hooks.checkpoint.interval = TRAIN_ITERS
    return cfg


@pytest.fixture(scope='session')
def trained_detector(toy_data, toy_coco, tmp_path_factory) -> dict:
    """Train the R-18 person detector a few iterations; ``config``, ``checkpoint``, ``runner``."""
    from mmengine.runner import Runner

    work_dir = str(tmp_path_factory.mktemp('r18_person'))
    cfg = r18_config(toy_data['root'], work_dir)
    # The Runner makes 'mmdet' the default scope; keep that inside this fixture.
    with DefaultScope.overwrite_default_scope('mmdet'):
        runner = Runner.from_cfg(cfg)
        runner.train()
    checkpoint = osp.join(work_dir, f'iter_{TRAIN_ITERS}.pth')
    return dict(config=R18_PERSON_CONFIG, checkpoint=checkpoint, runner=runner)
