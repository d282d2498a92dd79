"""Training-loop components: the phase-2 freezing hook and CPU-friendly distributed setup."""

from .distributed import CPUDistributedDataParallel, configure_launcher
from .hooks import FreezeAllButClassifierHook, freeze_all_but

__all__ = [
    'CPUDistributedDataParallel',
    'FreezeAllButClassifierHook',
    'configure_launcher',
    'freeze_all_but',
]
