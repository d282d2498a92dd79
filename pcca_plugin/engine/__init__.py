"""Training-loop components: freezing hooks, a progress bar, CPU-friendly DDP."""

from .distributed import CPUDistributedDataParallel, configure_launcher
from .hooks import FreezeAllButClassifierHook, FreezeModulesHook, ProgressBarHook, freeze_all_but

__all__ = [
    'CPUDistributedDataParallel',
    'FreezeAllButClassifierHook',
    'FreezeModulesHook',
    'ProgressBarHook',
    'configure_launcher',
    'freeze_all_but',
]
