"""Training-loop components: the phase-2 freezing hook, a progress bar, CPU-friendly DDP."""

from .distributed import CPUDistributedDataParallel, configure_launcher
from .hooks import FreezeAllButClassifierHook, ProgressBarHook, freeze_all_but

__all__ = [
    'CPUDistributedDataParallel',
    'FreezeAllButClassifierHook',
    'ProgressBarHook',
    'configure_launcher',
    'freeze_all_but',
]
