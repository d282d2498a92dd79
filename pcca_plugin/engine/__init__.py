"""Training-loop components (hooks)."""

from .hooks import FreezeAllButClassifierHook, freeze_all_but

__all__ = ['FreezeAllButClassifierHook', 'freeze_all_but']
