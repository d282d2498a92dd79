"""Training-loop components: freezing hooks, a progress bar, CPU-friendly DDP, AMP."""

from .amp import DeviceAmpOptimWrapper, enable_amp
from .distributed import CPUDistributedDataParallel, configure_launcher
from .hooks import FreezeAllButClassifierHook, FreezeModulesHook, ProgressBarHook, freeze_all_but

__all__ = [
    'CPUDistributedDataParallel',
    'DeviceAmpOptimWrapper',
    'FreezeAllButClassifierHook',
    'FreezeModulesHook',
    'ProgressBarHook',
    'configure_launcher',
    'enable_amp',
    'freeze_all_but',
]
