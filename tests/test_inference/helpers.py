"""Helpers of the inference tests: paths, the tiny detector, tool loading."""

import importlib.util
import os
import os.path as osp
import sys

import torch
from mmdet.registry import MODELS
from mmengine.config import Config

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_PCCA = osp.join(
    REPO_ROOT, 'configs', 'pcca', 'pcca_slowfast-tiny_1xb8-8x1x1-5e_toy-sports-rgb.py'
)
TINY_PCCA_TTA = osp.join(
    REPO_ROOT, 'configs', 'pcca', 'tta', 'pcca_slowfast-tiny_1xb8-8x1x1-5e_toy-sports-rgb_tta.py'
)
#: The toy configs read their data from this path, relative to the working directory.
CONFIG_DATA_ROOT = osp.join('data', 'toy_sports')
#: Small data: 3 validation videos of 15 frames -> 45 test samples (odd, so that
#: 2 ranks need a padded sample).
TOY_SIZES = dict(num_train_videos=2, num_val_videos=3, num_frames=15)


def build_tiny_detector(seed: int = 0) -> torch.nn.Module:
    """The tiny PCCA detector of the toy config, initialised with a fixed seed."""
    cfg = Config.fromfile(TINY_PCCA)
    cfg.model.init_cfg = None  # random weights, not the demo's pretrained backbone
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.eval()


def subprocess_env() -> dict:
    """Environment for tool subprocesses: the repo importable, one thread per process."""
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    env['PYTHONPATH'] = REPO_ROOT + (
        os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else ''
    )
    return env


def load_tool(relative_path: str, name: str):
    """Import ``REPO_ROOT/relative_path`` as module ``name`` (``test`` is a stdlib package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO_ROOT, relative_path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
