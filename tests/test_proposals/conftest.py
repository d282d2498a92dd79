"""Fixtures for the proposal tests: a tiny toy-sports dataset, its COCO conversion, a detector.

The dataset comes from the project's real generator (``tools/data/make_toy_sports.py``):
MultiSports-format GT pickle, OpenCV-written mp4 videos and JPEG frame folders.
The detector is the R-18 person Faster R-CNN of ``configs/det`` trained for a
few iterations by mmengine's ``Runner`` on CPU (random init, nothing downloaded).
"""

import importlib.util
import os.path as osp
import sys
from types import ModuleType

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
R18_CONFIG = osp.join(
    REPO_ROOT, 'configs', 'det', 'faster-rcnn_r18-fpn_1xb2-4iter_toysports-person.py'
)
#: Toy dataset size: enough for two validation videos and a few training batches.
TOY_SIZES = dict(
    num_train_videos=4, num_val_videos=2, num_frames=8, head_tube_len=(4, 6), tail_tube_len=(2, 3)
)
TOY_SEED = 0
COCO_PREFIX = 'toy_sports_person'
TRAIN_ITERS = 3


def load_tool(relative_path: str) -> ModuleType:
    """Import a script under ``tools/`` as a module (tools are not a package)."""
    path = osp.join(REPO_ROOT, relative_path)
    name = 'tool_' + osp.splitext(relative_path)[0].replace('/', '_')
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def toy_data(tmp_path_factory) -> dict:
    """The toy-sports dataset: ``root``, ``gt_file``, ``gt`` (loaded), ``val_videos``."""
    from pcca_plugin.utils.pickle_io import load_pickle

    root = str(tmp_path_factory.mktemp('toy_sports'))
    make_toy_sports = load_tool('tools/data/make_toy_sports.py').make_toy_sports
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
    """COCO person json files of the toy dataset: ``{'train': path, 'val': path}``."""
    to_coco = load_tool('tools/data/multisports/to_coco.py')
    out_dir = osp.join(toy_data['root'], 'annotations')
    paths = to_coco.main(
        [
            toy_data['gt_file'],
            '--out-dir',
            out_dir,
            '--prefix',
            COCO_PREFIX,
            '--frame-root',
            osp.join(toy_data['root'], 'rawframes'),
        ]
    )
    return dict(zip(('train', 'val'), paths))


def r18_config(toy_root: str, work_dir: str) -> Config:
    """The R-18 person detector config pointed at a toy dataset."""
    cfg = Config.fromfile(R18_CONFIG)
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
    return dict(config=R18_CONFIG, checkpoint=checkpoint, runner=runner)
