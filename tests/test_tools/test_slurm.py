"""``tools/slurm_train.sh`` and ``--launcher slurm`` on CPU processes, with a simulated Slurm.

What is simulated, and what is not. There is no Slurm here. A fake ``srun``
(a shell script put first on ``PATH``) records the options
``slurm_train.sh`` passes, then starts ``--ntasks`` copies of the command on
this machine with the variables real srun gives every task (``SLURM_PROCID``,
``SLURM_LOCALID``, ``SLURM_NTASKS``, ``SLURM_NODELIST``, ``SLURM_JOB_NAME``)
and waits for all of them. Everything after that is real: ``tools/train.py``,
the gloo process group created by ``pcca_plugin.engine.distributed`` from
those variables, mmengine's ``Runner`` and DDP over two processes. Not
covered: Slurm's scheduling, several nodes, GPUs. The node list is a single
host, so no ``scontrol`` is needed (none exists here); the expansion of a
multi-host list by ``scontrol`` is tested with a fake ``scontrol``.
"""

import os
import os.path as osp
import stat
import subprocess
import sys

import pytest
import torch

from pcca_plugin.apis import run_train
from pcca_plugin.engine import distributed
from pcca_plugin.testing import repo_path, run_tool, subprocess_env
from pcca_plugin.testing.inference import (
    CLASS_BALANCED_CONFIG,
    CONFIG_DATA_ROOT,
    DDP_COMMAND_TIMEOUT,
    TINY_PCCA,
    TOY_SIZES,
    free_port,
)

SLURM_TRAIN = repo_path('tools', 'slurm_train.sh')
#: Tasks of the simulated job (``GPUS``), all on one node (``GPUS_PER_NODE``).
NUM_TASKS = 2
#: A stand-in for srun: records its arguments, runs ``--ntasks`` local copies of the command
#: with the task variables srun sets, waits for all and fails if any failed.
FAKE_SRUN = r"""#!/usr/bin/env bash
set -u
printf '%s\n' "$@" > "$FAKE_SLURM_DIR/srun_args.txt"
ntasks=1
job_name=
while [ "$#" -gt 0 ]; do
    case "$1" in
        -p) shift 2 ;;
        --ntasks=*) ntasks=${1#--ntasks=}; shift ;;
        --job-name=*) job_name=${1#--job-name=}; shift ;;
        -*) shift ;;
        *) break ;;
    esac
done
pids=()
for ((task = 0; task < ntasks; task++)); do
    SLURM_PROCID=$task SLURM_LOCALID=$task SLURM_NTASKS=$ntasks SLURM_NODELIST=localhost \
        SLURM_JOB_NAME=$job_name "$@" > "$FAKE_SLURM_DIR/task_$task.log" 2>&1 &
    pids+=("$!")
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit "$status"
"""


def write_executable(path, text: str) -> str:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


def fake_slurm_env(fake_dir) -> dict:
    """Environment of a ``slurm_train.sh`` call with the fake srun in ``fake_dir`` on PATH."""
    fake_dir.mkdir()
    write_executable(fake_dir / 'srun', FAKE_SRUN)
    env = subprocess_env()
    env.pop('MASTER_ADDR', None)  # the tasks take it from SLURM_NODELIST
    for name in ('GPUS', 'GPUS_PER_NODE', 'CPUS_PER_TASK', 'GRES', 'SRUN_ARGS'):
        env.pop(name, None)
    env.update(PATH=str(fake_dir) + os.pathsep + env['PATH'], FAKE_SLURM_DIR=str(fake_dir))
    return env


@pytest.fixture(scope='module')
def slurm_job(tmp_path_factory):
    """One epoch of the tiny toy config on a CPU partition: 2 tasks of 2 class-balanced
    iterations each."""
    from pcca_plugin.datasets.toy_sports import make_toy_sports

    root = tmp_path_factory.mktemp('slurm')
    make_toy_sports(str(root / CONFIG_DATA_ROOT), seed=0, **TOY_SIZES)
    fake_dir = root / 'fake_slurm'
    env = fake_slurm_env(fake_dir)
    config = root / 'tiny_class_balanced.py'
    config.write_text(CLASS_BALANCED_CONFIG.format(base=TINY_PCCA))
    work_dir = root / 'work'
    env.update(
        PYTHON=sys.executable,
        MASTER_PORT=str(free_port()),
        GPUS=str(NUM_TASKS),
        GPUS_PER_NODE=str(NUM_TASKS),
        CPUS_PER_TASK='1',
        GRES='',  # a CPU partition: no --gres
        SRUN_ARGS='--quotatype=auto --time=5',
    )
    command = ['bash', SLURM_TRAIN, 'cpu', 'tiny-job', str(config), str(work_dir)]
    command += [
        '--cfg-options',
        'train_cfg.max_epochs=1',
        'train_cfg.val_begin=2',
        'default_hooks.logger.interval=1',
    ]
    result = subprocess.run(
        command,
        cwd=str(root),
        env=env,
        capture_output=True,
        text=True,
        timeout=DDP_COMMAND_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    logs = [(fake_dir / f'task_{task}.log') for task in range(NUM_TASKS)]
    outputs = [log.read_text() if log.exists() else '' for log in logs]
    assert result.returncode == 0, result.stderr[-2000:] + '\n'.join(o[-3000:] for o in outputs)
    srun_args = (fake_dir / 'srun_args.txt').read_text().splitlines()
    return dict(work_dir=str(work_dir), config=str(config), srun_args=srun_args, outputs=outputs)


def test_slurm_train_passes_the_job_options_to_srun(slurm_job):
    args = slurm_job['srun_args']
    assert args[:2] == ['-p', 'cpu'] and '--job-name=tiny-job' in args
    assert not any(arg.startswith('--gres') for arg in args)  # GRES= (CPU partition)
    for option in (
        f'--ntasks={NUM_TASKS}',
        f'--ntasks-per-node={NUM_TASKS}',
        '--cpus-per-task=1',
        '--kill-on-bad-exit=1',
        '--quotatype=auto',  # SRUN_ARGS, split into words
        '--time=5',
    ):
        assert option in args, (option, args)
    command = args[args.index(sys.executable) :]
    assert command[:5] == [
        sys.executable,
        '-u',
        repo_path('tools', 'train.py'),
        slurm_job['config'],
        '--launcher',
    ]
    # The optional WORK_DIR argument becomes --work-dir; the options follow unchanged.
    assert command[5:8] == ['slurm', '--work-dir', slurm_job['work_dir']]
    assert command[8:] == [
        '--cfg-options',
        'train_cfg.max_epochs=1',
        'train_cfg.val_begin=2',
        'default_hooks.logger.interval=1',
    ]


def test_two_slurm_tasks_train_together_on_cpu(slurm_job):
    work_dir = slurm_job['work_dir']
    log_files = [
        osp.join(root, f)
        for root, _, files in os.walk(work_dir)
        for f in files
        if f.endswith('.log')
    ]
    assert len(log_files) == 1, log_files  # rank 0 writes the log
    log = open(log_files[0]).read()
    assert 'Distributed launcher: slurm' in log
    assert 'Distributed training: True' in log and f'GPU number: {NUM_TASKS}' in log
    # No CUDA: the config's nccl became gloo, in both tasks.
    for output in slurm_job['outputs']:
        assert "env_cfg.dist_cfg.backend 'nccl' -> 'gloo'" in output
    # 4 class-balanced draws shared by the 2 ranks: 2 iterations each, then a checkpoint.
    assert 'Epoch(train) [1][2/2]' in log and 'Epoch(train) [1][3/' not in log
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))


def test_slurm_train_defaults_and_usage(tmp_path):
    fake_dir = tmp_path / 'fake_slurm'
    env = dict(fake_slurm_env(fake_dir), PYTHON='true')  # the tasks do nothing
    result = subprocess.run(
        ['bash', SLURM_TRAIN, 'gpu', 'job', TINY_PCCA, '--resume'],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    args = (fake_dir / 'srun_args.txt').read_text().splitlines()
    for option in ('--gres=gpu:8', '--ntasks=8', '--ntasks-per-node=8', '--cpus-per-task=5'):
        assert option in args, (option, args)
    # No WORK_DIR: the first option is passed on, no --work-dir added.
    assert args[-4:] == [TINY_PCCA, '--launcher', 'slurm', '--resume']
    result = subprocess.run(
        ['bash', SLURM_TRAIN, 'partition', 'job'], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2 and 'usage:' in result.stderr


def test_train_tool_outside_srun_names_the_missing_variables(monkeypatch):
    for name in distributed.SLURM_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('SLURM_NTASKS', '2')
    with pytest.raises(RuntimeError, match='SLURM_PROCID, SLURM_NODELIST not set') as error:
        run_train(TINY_PCCA, launcher='slurm')
    assert 'tools/slurm_train.sh' in str(error.value)
    # The command line (in this environment) says the same in one line, and exits non-zero.
    result = run_tool('train.py', TINY_PCCA, '--launcher', 'slurm')
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('train.py: error: ') and 'SLURM_PROCID, SLURM_NODELIST not set' in last
    assert 'tools/slurm_train.sh' in last
    assert last.endswith('(rerun with --debug for the traceback)')


def test_master_address_from_the_node_list(tmp_path, monkeypatch):
    assert distributed.slurm_master_address('cn042') == 'cn042'  # one host: no scontrol
    monkeypatch.setenv('PATH', str(tmp_path))  # no scontrol on PATH
    with pytest.raises(RuntimeError, match=r"'cn\[041-044\]'.*MASTER_ADDR"):
        distributed.slurm_master_address('cn[041-044]')
    # A fake scontrol that expands this one list, as `scontrol show hostnames` prints it.
    write_executable(
        tmp_path / 'scontrol',
        '#!/bin/sh\n[ "$1 $2 $3" = "show hostnames cn[041-044]" ] || exit 1\n'
        'printf "cn041\\ncn042\\ncn043\\ncn044\\n"\n',
    )
    assert distributed.slurm_master_address('cn[041-044]') == 'cn041'
    with pytest.raises(RuntimeError, match='exit 1'):
        distributed.slurm_master_address('gpu[1-2],cpu1')


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU path: with CUDA mmengine inits')
def test_configure_launcher_creates_the_gloo_group_of_a_slurm_task(monkeypatch):
    """In this process, as task 0 of a one-task job: the group exists before the Runner."""
    from mmengine.config import Config

    assert not torch.distributed.is_initialized()
    for name in ('MASTER_ADDR', 'MASTER_PORT', 'RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        monkeypatch.delenv(name, raising=False)
    port = free_port()
    monkeypatch.setenv('SLURM_PROCID', '0')
    monkeypatch.setenv('SLURM_LOCALID', '0')
    monkeypatch.setenv('SLURM_NTASKS', '1')
    monkeypatch.setenv('SLURM_NODELIST', 'localhost')
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl', port=port, timeout=60))))
    try:
        distributed.configure_launcher(cfg, 'slurm')
        assert torch.distributed.is_initialized()
        assert torch.distributed.get_backend() == 'gloo' and cfg.env_cfg.dist_cfg.backend == 'gloo'
        assert torch.distributed.get_rank() == 0 and torch.distributed.get_world_size() == 1
        assert os.environ['MASTER_ADDR'] == 'localhost' and os.environ['MASTER_PORT'] == str(port)
        assert os.environ['RANK'] == '0' and os.environ['WORLD_SIZE'] == '1'
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
