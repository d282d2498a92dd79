"""Helpers of the training and inference tests: the tiny configs, toy data, a tiny checkpoint.

Also the R-18 person detector config that the proposal tests train on toy data.

The tiny toy-sports PCCA config trains and tests on CPU in seconds; the tests
of ``tools/test.py``, ``tools/train.py`` (one process, DDP and Slurm), TTA and
the video demo share it, the small toy data it reads and a checkpoint of it
with seeded random weights. :class:`DyingRankRunner` is a Runner whose rank 1
dies after its first test iteration (``runner_type='DyingRankRunner'`` in a
config that imports this module), to test what a distributed run does then.
"""

import os
import os.path as osp
import socket

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from . import repo_path

#: The tiny toy-sports PCCA config, and the same with a ``tta_model``.
TINY_PCCA = repo_path('configs', 'pcca', 'pcca_slowfast-tiny_1xb8-8x1x1-5e_toy-sports-rgb.py')
TINY_PCCA_TTA = repo_path(
    'configs', 'pcca', 'tta', 'pcca_slowfast-tiny_1xb8-8x1x1-5e_toy-sports-rgb_tta.py'
)
#: The R-18 person Faster R-CNN trained a few iterations on toy-sports (the proposal tests).
R18_PERSON_CONFIG = repo_path(
    'configs', 'det', 'faster-rcnn_r18-fpn_1xb2-4iter_toysports-person.py'
)
#: The toy configs read their data from this path, relative to the working directory.
CONFIG_DATA_ROOT = osp.join('data', 'toy_sports')
#: Small data: 3 validation videos of 15 frames -> 45 test samples (odd, so that
#: 2 ranks need a padded sample).
TOY_SIZES = dict(num_train_videos=2, num_val_videos=3, num_frames=15)
#: The tiny config trained with the class-balanced sampler: 4 draws per epoch in all.
CLASS_BALANCED_CONFIG = """_base_ = [{base!r}]
model = dict(init_cfg=None)  # no pretrained backbone in the tests: a random one, frozen
train_dataloader = dict(
    batch_size=1,
    sampler=dict(_delete_=True, type='ClassBalancedSampler', num_samples=4, seed=0),
)
"""
#: A config (``.format(base=...)``) whose test run loses rank 1 after one iteration.
DYING_RANK_CONFIG = """_base_ = [{base!r}]
custom_imports = dict(
    imports=['pcca_plugin', 'pcca_plugin.testing.inference'], allow_failed_imports=False
)
runner_type = 'DyingRankRunner'
"""
#: Seconds any one distributed command of the tests may take before the test fails.
DDP_COMMAND_TIMEOUT = 180
#: Exit status of the rank that :class:`DyingRankRunner` ends, and that rank.
DEATH_STATUS = 3
DYING_RANK = 1


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free now (for a rendezvous)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def make_toy_root(root: str, seed: int = 0) -> str:
    """Write the toy-sports data of :data:`TOY_SIZES` under ``root/data/toy_sports``.

    Returns:
        ``root``: the working directory the toy configs expect.
    """
    from ..datasets.toy_sports import make_toy_sports

    make_toy_sports(osp.join(root, CONFIG_DATA_ROOT), seed=seed, **TOY_SIZES)
    return root


def build_tiny_detector(seed: int = 0) -> torch.nn.Module:
    """The tiny PCCA detector of the toy config, initialised with a fixed seed, in eval mode."""
    from mmdet.registry import MODELS

    from .. import register_all_modules

    register_all_modules()
    cfg = Config.fromfile(TINY_PCCA)
    cfg.model.init_cfg = None  # random weights, not the demo's pretrained backbone
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.eval()


def save_tiny_checkpoint(path: str, seed: int = 0) -> str:
    """Save a checkpoint of :func:`build_tiny_detector` to ``path``; returns ``path``."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    torch.save({'state_dict': build_tiny_detector(seed).state_dict(), 'meta': {}}, path)
    return path


class DieHook(Hook):
    """Ends the process of rank :data:`DYING_RANK` abruptly after a test iteration, as an
    out-of-memory kill would."""

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.rank == DYING_RANK:
            os._exit(DEATH_STATUS)


@RUNNERS.register_module()
class DyingRankRunner(Runner):
    """mmengine's Runner with a :class:`DieHook`."""

    @classmethod
    def from_cfg(cls, cfg) -> Runner:
        runner = super().from_cfg(cfg)
        runner.register_hook(DieHook())
        return runner


__all__ = [
    'CLASS_BALANCED_CONFIG',
    'CONFIG_DATA_ROOT',
    'DDP_COMMAND_TIMEOUT',
    'DEATH_STATUS',
    'DYING_RANK',
    'DYING_RANK_CONFIG',
    'DieHook',
    'DyingRankRunner',
    'R18_PERSON_CONFIG',
    'TINY_PCCA',
    'TINY_PCCA_TTA',
    'TOY_SIZES',
    'build_tiny_detector',
    'free_port',
    'make_toy_root',
    'save_tiny_checkpoint',
]
