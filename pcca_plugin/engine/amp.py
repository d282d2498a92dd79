"""Mixed-precision training: mmengine's ``AmpOptimWrapper`` on CUDA and on CPU.

mmengine 0.10's ``AmpOptimWrapper`` autocasts the forward pass and scales the
loss with a ``torch.cuda.amp.GradScaler``; its constructor refuses to run
without an accelerator. :class:`DeviceAmpOptimWrapper` is that wrapper with
the precision chosen for the device at construction:

- CUDA (or another accelerator mmengine knows): float16 with dynamic loss
  scaling, exactly ``AmpOptimWrapper``;
- CPU: bfloat16 (the only dtype of CPU autocast), without loss scaling,
  which bfloat16 does not need: it has float32's exponent range, so small
  gradients do not underflow.

:func:`enable_amp` switches a config's ``optim_wrapper`` to it; ``tools/train.py
--amp`` and the config switch ``amp = True``
(``configs/_base_/default_runtime.py``) call it.
"""

from typing import Optional, Union

import torch
from mmengine.config import Config
from mmengine.device import is_cuda_available, is_mlu_available, is_musa_available, is_npu_available
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

#: Autocast dtype on CPU: CPU autocast supports bfloat16 only.
CPU_AMP_DTYPE = 'bfloat16'
#: Autocast dtype on an accelerator: float16 with a dynamic loss scale (mmengine's default).
ACCELERATOR_AMP_DTYPE = 'float16'
#: Optimizer wrappers that :func:`enable_amp` replaces (the plain one) or keeps (AMP ones).
PLAIN_WRAPPER = 'OptimWrapper'
AMP_WRAPPERS = ('AmpOptimWrapper', 'DeviceAmpOptimWrapper')


def accelerator_available() -> bool:
    """Whether mmengine's ``AmpOptimWrapper`` can run here (CUDA, NPU, MLU, MUSA)."""
    return is_cuda_available() or is_npu_available() or is_mlu_available() or is_musa_available()


@OPTIM_WRAPPERS.register_module()
class DeviceAmpOptimWrapper(AmpOptimWrapper):
    """``AmpOptimWrapper`` that also trains on CPU: float16 on CUDA, bfloat16 on CPU.

    Args:
        loss_scale (float | str | dict): as ``AmpOptimWrapper`` (on an
            accelerator); ignored on CPU, where bfloat16 needs no scaling.
        dtype (str | torch.dtype, optional): autocast dtype; None picks
            float16 on an accelerator and bfloat16 on CPU. On CPU only
            bfloat16 is possible.
        use_fsdp (bool): as ``AmpOptimWrapper``.
        **kwargs: ``OptimWrapper`` arguments (``optimizer``, ``clip_grad``,
            ``accumulative_counts``).
    """

    def __init__(
        self,
        loss_scale: Union[str, float, dict] = 'dynamic',
        dtype: Optional[Union[str, torch.dtype]] = None,
        use_fsdp: bool = False,
        **kwargs,
    ) -> None:
        if accelerator_available():
            super().__init__(
                loss_scale=loss_scale,
                dtype=ACCELERATOR_AMP_DTYPE if dtype is None else dtype,
                use_fsdp=use_fsdp,
                **kwargs,
            )
            return
        if dtype not in (None, CPU_AMP_DTYPE, torch.bfloat16):
            raise ValueError(
                f'DeviceAmpOptimWrapper: dtype={dtype!r} on a machine without an accelerator; '
                f'CPU autocast supports {CPU_AMP_DTYPE} only: remove optim_wrapper.dtype '
                'or set it to bfloat16.'
            )
        # AmpOptimWrapper.__init__ asserts an accelerator; set up what it would, for CPU.
        OptimWrapper.__init__(self, **kwargs)
        self._scale_update_param = None
        # A disabled scaler: scale() returns the loss, step() steps, update() is a no-op.
        self.loss_scaler = torch.amp.GradScaler('cpu', enabled=False)
        self.cast_dtype = getattr(torch, CPU_AMP_DTYPE)


def enable_amp(cfg: Config, source: str = 'tools/train.py --amp') -> Config:
    """Switch ``cfg.optim_wrapper`` to :class:`DeviceAmpOptimWrapper`.

    A plain ``OptimWrapper`` (or one without ``type``) becomes the AMP
    wrapper, keeping its optimizer, gradient clipping and accumulation; an AMP
    wrapper is kept as it is.

    Args:
        cfg (Config): a training config with an ``optim_wrapper``.
        source (str): what asked for mixed precision, for the error message.

    Returns:
        Config: ``cfg``, changed in place.

    Raises:
        ValueError: the config has no ``optim_wrapper``, or another wrapper type.
    """
    wrapper = cfg.get('optim_wrapper')
    if wrapper is None:
        raise ValueError(
            f'{source}: the config has no optim_wrapper to run in mixed precision; '
            'add one (e.g. from configs/_base_/schedules/).'
        )
    kind = wrapper.get('type', PLAIN_WRAPPER)
    if kind in AMP_WRAPPERS:
        return cfg
    if kind != PLAIN_WRAPPER:
        raise ValueError(
            f'{source}: optim_wrapper.type={kind!r} cannot be switched to mixed precision; '
            f'use {PLAIN_WRAPPER} or set optim_wrapper.type=DeviceAmpOptimWrapper yourself.'
        )
    wrapper['type'] = 'DeviceAmpOptimWrapper'
    return cfg


__all__ = ['DeviceAmpOptimWrapper', 'accelerator_available', 'enable_amp']
