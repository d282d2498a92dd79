"""Distributed training and testing on machines without CUDA (mmengine 0.10).

mmengine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device`` and its Runner
wraps the model with ``device_ids=[LOCAL_RANK]``; both fail for CPU processes
(a CPU-only torch, or CI). :func:`configure_launcher` switches such a run to
the ``gloo`` backend, initialises the process group itself (``pytorch``:
torchrun's variables; ``slurm``: srun's, as mmengine's ``_init_dist_slurm``
reads them), and selects :class:`CPUDistributedDataParallel`. With CUDA it
only sets ``cfg.launcher``.
"""

import datetime
import logging
import os
import re
import shutil
import subprocess
from typing import List, Optional

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS

#: Launchers of mmengine's ``init_dist``.
LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')
#: Collective backend for processes without a GPU.
CPU_BACKEND = 'gloo'
#: Variables srun sets in every task that ``--launcher slurm`` cannot do without.
SLURM_VARIABLES = ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST')
#: Port of the rendezvous when neither ``dist_cfg.port`` nor ``MASTER_PORT`` gives one
#: (torch.distributed's default, as in mmengine).
DEFAULT_MASTER_PORT = 29500
#: A Slurm node list naming one host, without range (``node[1-4]``) or list (``a,b``) syntax.
_SINGLE_HOST = re.compile(r'[A-Za-z0-9._-]+')
#: Hooks that turn ``requires_grad`` off after the Runner wrapped the model in DDP. DDP
#: registered those parameters when it was built and waits for their gradients, so it
#: needs ``find_unused_parameters=True`` to finish every reduction.
FREEZING_HOOKS = ('FreezeModulesHook', 'FreezeAllButClassifierHook')
DDP_WRAPPER = 'MMDistributedDataParallel'


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that drops ``device_ids`` for a CPU module.

    mmengine's Runner always passes ``device_ids=[LOCAL_RANK]``; torch only
    accepts ``device_ids`` for single-GPU modules.
    """

    def __init__(self, module, device_ids=None, **kwargs) -> None:
        on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
        super().__init__(module=module, device_ids=None if on_cpu else device_ids, **kwargs)


def freezes_parameters(cfg: Config) -> bool:
    """Whether the config trains with a hook that freezes parameters (:data:`FREEZING_HOOKS`)."""
    return any(hook.get('type') in FREEZING_HOOKS for hook in cfg.get('custom_hooks') or [])


def configure_launcher(cfg: Config, launcher: str) -> Config:
    """Set ``cfg.launcher``; without CUDA, switch to gloo and the CPU DDP wrapper.

    Without CUDA the process group is also created here, for ``pytorch``
    (torchrun's variables) and for ``slurm`` inside an srun task
    (:func:`init_slurm_process_group`); the Runner then skips mmengine's
    ``init_dist``. Outside an srun task ``slurm`` only logs a warning (no
    process group): :func:`check_slurm_environment` is the check that stops.

    With a freezing hook (:data:`FREEZING_HOOKS`) the DDP wrapper gets
    ``find_unused_parameters=True`` (unless the config says otherwise).

    Args:
        cfg: the loaded config (modified in place).
        launcher: one of :data:`LAUNCHERS`.

    Returns:
        Config: ``cfg``.
    """
    cfg.launcher = launcher
    if launcher != 'none' and freezes_parameters(cfg):
        wrapper = dict(cfg.get('model_wrapper_cfg') or dict(type=DDP_WRAPPER))
        wrapper.setdefault('find_unused_parameters', True)
        cfg.model_wrapper_cfg = wrapper
    if launcher == 'none' or torch.cuda.is_available():
        return cfg
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    if dist_cfg.get('backend', CPU_BACKEND) != CPU_BACKEND:
        print_log(
            f'no CUDA device: env_cfg.dist_cfg.backend {dist_cfg["backend"]!r} -> {CPU_BACKEND!r}',
            logger='current',
        )
        dist_cfg['backend'] = CPU_BACKEND
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None:
        cfg.model_wrapper_cfg = dict(type='CPUDistributedDataParallel', broadcast_buffers=False)
    elif wrapper.get('type') == DDP_WRAPPER:  # keep its options, drop the GPU device_ids
        cpu_wrapper = dict(broadcast_buffers=False)
        cpu_wrapper.update(wrapper, type='CPUDistributedDataParallel')
        cfg.model_wrapper_cfg = cpu_wrapper
    # mmengine's init_dist calls torch.cuda.set_device first, which a CPU-only torch
    # cannot do; the Runner skips init_dist when the process group exists.
    timeout = dist_cfg.get('timeout')
    kwargs = {} if timeout is None else dict(timeout=datetime.timedelta(seconds=timeout))
    if torch.distributed.is_initialized():
        return cfg
    if launcher == 'pytorch':
        torch.distributed.init_process_group(backend=CPU_BACKEND, **kwargs)
    elif launcher == 'slurm':
        missing = missing_slurm_variables()
        if missing:  # not a Slurm task: leave it to init_dist (tools/train.py stops earlier)
            print_log(
                f'--launcher slurm without {", ".join(missing)}: the process group is not '
                'created here; start the job with srun (tools/slurm_train.sh)',
                logger='current',
                level=logging.WARNING,
            )
        else:
            init_slurm_process_group(CPU_BACKEND, port=dist_cfg.get('port'), **kwargs)
    return cfg


def missing_slurm_variables() -> List[str]:
    """The :data:`SLURM_VARIABLES` absent from the environment (none inside an srun task)."""
    return [name for name in SLURM_VARIABLES if name not in os.environ]


def check_slurm_environment() -> None:
    """Raise when the process is not a Slurm task (``--launcher slurm`` outside srun).

    Raises:
        RuntimeError: naming the missing variables and the script that sets them.
    """
    missing = missing_slurm_variables()
    if missing:
        raise RuntimeError(
            f'--launcher slurm: {", ".join(missing)} not set in the environment. These come '
            'from srun; start the job with `bash tools/slurm_train.sh PARTITION JOB CONFIG`, '
            'or use --launcher pytorch (tools/dist_train.sh) without Slurm.'
        )


def slurm_master_address(node_list: str) -> str:
    """The first host of a Slurm node list: the rank-0 host, as mmengine takes it.

    A plain host name is returned as is; a list with ranges or commas
    (``node[01-04]``, ``a,b``) is expanded by ``scontrol show hostnames``, as
    mmengine's ``_init_dist_slurm`` does.

    Args:
        node_list: the value of ``SLURM_NODELIST``.

    Returns:
        str: the host name.

    Raises:
        RuntimeError: ``scontrol`` is missing or fails for a list it must expand.
    """
    if _SINGLE_HOST.fullmatch(node_list):
        return node_list
    scontrol = shutil.which('scontrol')
    if scontrol is None:
        raise RuntimeError(
            f'SLURM_NODELIST={node_list!r} names several hosts and `scontrol` is not on PATH '
            'to expand it; set MASTER_ADDR to the first host of the job.'
        )
    result = subprocess.run(
        [scontrol, 'show', 'hostnames', node_list], capture_output=True, text=True, check=False
    )
    hosts = result.stdout.split()
    if result.returncode != 0 or not hosts:
        raise RuntimeError(
            f'`scontrol show hostnames {node_list}` failed (exit {result.returncode}: '
            f'{result.stderr.strip()}); set MASTER_ADDR to the first host of the job.'
        )
    return hosts[0]


def init_slurm_process_group(
    backend: str = CPU_BACKEND, port: Optional[int] = None, **kwargs
) -> None:
    """Create the process group of an srun task without touching CUDA.

    The same environment as mmengine 0.10.7's ``_init_dist_slurm`` (rank
    ``SLURM_PROCID``, world size ``SLURM_NTASKS``, local rank ``SLURM_LOCALID``;
    ``MASTER_ADDR`` the first host of ``SLURM_NODELIST`` unless already set;
    ``MASTER_PORT`` from ``port``, else the environment, else
    :data:`DEFAULT_MASTER_PORT`), then ``init_process_group`` on ``backend``,
    without the ``torch.cuda.set_device`` a CPU-only torch cannot do.

    Args:
        backend: collective backend (``gloo`` on CPU).
        port: rendezvous port (``env_cfg.dist_cfg.port``).
        **kwargs: passed to ``torch.distributed.init_process_group`` (``timeout``).
    """
    check_slurm_environment()
    rank = int(os.environ['SLURM_PROCID'])
    world_size = int(os.environ['SLURM_NTASKS'])
    local_rank = int(os.environ.get('SLURM_LOCALID', rank))
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', str(DEFAULT_MASTER_PORT))
    if 'MASTER_ADDR' not in os.environ:
        os.environ['MASTER_ADDR'] = slurm_master_address(os.environ['SLURM_NODELIST'])
    os.environ.update(WORLD_SIZE=str(world_size), RANK=str(rank), LOCAL_RANK=str(local_rank))
    torch.distributed.init_process_group(
        backend=backend, rank=rank, world_size=world_size, **kwargs
    )


def destroy_process_group_after_success() -> None:
    """Destroy the default process group, if any, once the run has finished without error.

    A process that exits with a live gloo process group can abort during
    interpreter shutdown ("terminate called without an active exception",
    SIGABRT): gloo's worker threads outlive the objects they point to. torch
    asks every process to call ``destroy_process_group`` at the end of its work
    (its distributed docs, "Shutdown"); mmengine's Runner does not. Called only
    after ``Runner.train()`` / ``Runner.test()`` returned on this rank: after an
    exception other ranks may still be inside a collective, and destroying the
    group then can hang instead of failing (torchtitan does the same).
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
