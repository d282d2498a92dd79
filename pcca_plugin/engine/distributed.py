"""Distributed training and testing on machines without CUDA (mmengine 0.10).

mmengine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device`` and its Runner
wraps the model with ``device_ids=[LOCAL_RANK]``; both fail for CPU processes
(a CPU-only torch, or CI). :func:`configure_launcher` switches such a run to
the ``gloo`` backend, initialises the process group itself, and selects
:class:`CPUDistributedDataParallel`. With CUDA it only sets ``cfg.launcher``.
"""

import datetime

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS

#: Collective backend for processes without a GPU.
#: Launchers of mmengine's ``init_dist``.
LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')
CPU_BACKEND = 'gloo'
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
    if launcher == 'pytorch' and not torch.distributed.is_initialized():
        # mmengine's init_dist calls torch.cuda.set_device first, which a CPU-only torch
        # cannot do; the Runner skips init_dist when the process group exists.
        timeout = dist_cfg.get('timeout')
        kwargs = {} if timeout is None else dict(timeout=datetime.timedelta(seconds=timeout))
        torch.distributed.init_process_group(backend=CPU_BACKEND, **kwargs)
    return cfg
