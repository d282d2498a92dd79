"""2-process DDP on CPU (gloo, torchrun): training, evaluation equal to 1 process, a dying rank."""

import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from pcca_plugin.apis import run_test
from pcca_plugin.testing import repo_path, subprocess_env
from pcca_plugin.testing.inference import (
    CLASS_BALANCED_CONFIG,
    DDP_COMMAND_TIMEOUT,
    DYING_RANK_CONFIG,
    TINY_PCCA,
    free_port,
)
from pcca_plugin.utils.pickle_io import load_pickle

METRIC_KEYS = ('frame_mAP@0.5', 'video_mAP@0.2', 'video_mAP@0.5')
#: Every 3rd frame of the 3 x 15 validation frames: 15 test samples, an odd number.
FRAME_STRIDE = 3
STRIDE_OPTION = f'test_dataloader.dataset.frame_stride={FRAME_STRIDE}'


def run(command, cwd):
    env = dict(subprocess_env(), PYTHON=sys.executable, PORT=str(free_port()))
    result = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=DDP_COMMAND_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    return result, result.stdout + result.stderr


@pytest.fixture(scope='module')
def ddp_checkpoint(toy_root, tmp_path_factory):
    """2 iterations per rank of DDP training with the class-balanced sampler."""
    work_dir = tmp_path_factory.mktemp('ddp_train')
    config = work_dir / 'tiny_class_balanced.py'
    config.write_text(CLASS_BALANCED_CONFIG.format(base=TINY_PCCA))
    result, output = run(
        [
            'bash',
            repo_path('tools', 'dist_train.sh'),
            str(config),
            '2',
            '--work-dir',
            str(work_dir),
            '--cfg-options',
            'train_cfg.max_epochs=1',
            'train_cfg.val_begin=2',
            'default_hooks.logger.interval=1',
            'env_cfg.dist_cfg.backend=gloo',
        ],
        cwd=toy_root,
    )
    assert result.returncode == 0, output[-4000:]
    return str(work_dir), output


def test_ddp_training_runs_on_two_processes(ddp_checkpoint):
    work_dir, output = ddp_checkpoint
    log = open(
        next(
            osp.join(root, f)
            for root, _, files in os.walk(work_dir)
            for f in files
            if f.endswith('.log')
        )
    ).read()
    assert 'Distributed training: True' in log
    # 4 class-balanced draws over 2 ranks: 2 iterations on each, then a checkpoint.
    assert 'Epoch(train) [1][2/2]' in log and 'Epoch(train) [1][3/' not in log
    assert 'ClassBalancedSampler' in log and 'on rank 0' in log
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))


def test_two_process_evaluation_equals_one_process(ddp_checkpoint, toy_root, tmp_path, monkeypatch):
    checkpoint = osp.join(ddp_checkpoint[0], 'epoch_1.pth')
    dist_dets = str(tmp_path / 'dist.pkl')
    result, output = run(
        [
            'bash',
            repo_path('tools', 'dist_test.sh'),
            TINY_PCCA,
            checkpoint,
            '2',
            '--work-dir',
            str(tmp_path / 'dist'),
            '--dump-frame-detections',
            dist_dets,
            '--cfg-options',
            'env_cfg.dist_cfg.backend=gloo',
            STRIDE_OPTION,
        ],
        cwd=toy_root,
    )
    assert result.returncode == 0, output[-4000:]
    line = [ln for ln in output.splitlines() if 'Epoch(test)' in ln and 'frame_mAP' in ln][-1]
    # 15 samples on 2 ranks: 8 iterations each (one padded sample, dropped by the metric).
    assert 'Epoch(test) [8/8]' in line
    dist_metrics = {k: float(line.split(f'{k}: ')[1].split()[0]) for k in METRIC_KEYS}

    monkeypatch.chdir(toy_root)
    single_dets = str(tmp_path / 'single.pkl')
    # One thread, like each rank (subprocess_env): the same float summation order, so the
    # comparison below checks the sharding, not the threading.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = run_test(
            TINY_PCCA,
            checkpoint,
            work_dir=str(tmp_path / 'single'),
            dump_frame_detections=single_dets,
            cfg_options={'test_dataloader.dataset.frame_stride': FRAME_STRIDE},
        )
    finally:
        torch.set_num_threads(threads)
    for key in METRIC_KEYS:
        assert dist_metrics[key] == pytest.approx(single[key], abs=1e-4), key
    a, b = load_pickle(dist_dets), load_pickle(single_dets)
    assert a.shape == b.shape and len(np.unique(a[:, :2], axis=0)) == 15
    np.testing.assert_array_equal(a[:, :3], b[:, :3])
    np.testing.assert_allclose(a[:, 3:], b[:, 3:], rtol=0, atol=1e-5)


def test_a_dying_rank_fails_the_run_and_is_named(ddp_checkpoint, toy_root, tmp_path):
    """tools/test.py under torchrun with a Runner whose rank 1 dies after one iteration."""
    checkpoint = osp.join(ddp_checkpoint[0], 'epoch_1.pth')
    config = tmp_path / 'tiny_dying_rank.py'
    config.write_text(DYING_RANK_CONFIG.format(base=TINY_PCCA))
    result, output = run(
        [
            sys.executable,
            '-m',
            'torch.distributed.run',
            '--nproc_per_node=2',
            f'--master_port={free_port()}',
            repo_path('tools', 'test.py'),
            str(config),
            checkpoint,
            '--launcher',
            'pytorch',
            '--work-dir',
            str(tmp_path / 'dying'),
            '--cfg-options',
            'env_cfg.dist_cfg.backend=gloo',
        ],
        cwd=toy_root,
    )
    assert result.returncode != 0
    # torchrun's failure summary names the rank and its exit status; no metric is reported.
    assert 'rank      : 1' in output and 'exitcode  : 3' in output, output[-3000:]
    assert 'frame_mAP' not in output


def test_class_balanced_draws_split_across_ranks(in_toy_root):
    """The 2 ranks share one sequence of draws, each taking every other one."""
    from mmaction.registry import DATA_SAMPLERS, DATASETS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    cfg = Config.fromfile(TINY_PCCA)
    with DefaultScope.overwrite_default_scope('mmaction'):
        dataset = DATASETS.build(cfg.train_dataloader.dataset)

        def draws(rank, world_size):
            sampler = DATA_SAMPLERS.build(
                dict(
                    type='ClassBalancedSampler',
                    dataset=dataset,
                    num_samples=10,
                    seed=0,
                    rank=rank,
                    world_size=world_size,
                )
            )
            sampler.set_epoch(1)
            return list(sampler)

        single, rank0, rank1 = draws(0, 1), draws(0, 2), draws(1, 2)
    assert len(rank0) == len(rank1) == 5
    assert rank0 == single[0::2] and rank1 == single[1::2]


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU wrapper choice')
def test_launcher_config_for_frozen_parameters_on_cpu():
    """A freezing hook gets find_unused_parameters; a DDP wrapper's own options survive the
    switch to the CPU wrapper (broadcast_buffers given in the config included)."""
    from mmengine.config import Config

    from pcca_plugin.engine import configure_launcher

    frozen = [dict(type='FreezeModulesHook', modules=['backbone'])]
    cfg = configure_launcher(Config(dict(custom_hooks=frozen)), 'slurm')
    assert cfg.model_wrapper_cfg == dict(
        type='CPUDistributedDataParallel', broadcast_buffers=False, find_unused_parameters=True
    )
    wrapper = dict(type='MMDistributedDataParallel', broadcast_buffers=True)
    cfg = configure_launcher(Config(dict(custom_hooks=frozen, model_wrapper_cfg=wrapper)), 'slurm')
    assert cfg.model_wrapper_cfg == dict(
        type='CPUDistributedDataParallel', broadcast_buffers=True, find_unused_parameters=True
    )
    cfg = configure_launcher(Config(dict()), 'slurm')
    assert cfg.model_wrapper_cfg == dict(type='CPUDistributedDataParallel', broadcast_buffers=False)


def test_process_group_is_destroyed_after_a_successful_run(tmp_path):
    """tools/train.py and tools/test.py end with this: no live gloo group at interpreter exit."""
    import torch.distributed as dist

    from pcca_plugin.engine.distributed import destroy_process_group_after_success

    destroy_process_group_after_success()  # nothing to destroy: a no-op
    assert not dist.is_initialized()
    dist.init_process_group(
        'gloo', init_method=f'file://{tmp_path / "rendezvous"}', rank=0, world_size=1
    )
    assert dist.is_initialized()
    destroy_process_group_after_success()
    assert not dist.is_initialized()
