"""pcca_plugin: Person-Context Cross Attention for spatio-temporal action detection.

What an import costs, in three rules:

1. ``pcca_plugin.evaluation`` (but its ``metrics``) and ``pcca_plugin.utils`` import numpy only.
2. The other subpackages import torch and the OpenMMLab stack; each registers its own components.
3. ``import pcca_plugin`` registers them all when mmengine is already imported (``custom_imports``
   under ``mim``, ``tools/`` or any ``Runner``); otherwise scripts call ``register_all_modules()``.

Importing the package also checks the installed OpenMMLab versions (package
metadata only) and installs the one import finder of :mod:`pcca_plugin.compat`
that mmaction2 1.2.0's wheel needs; it changes nothing else in the interpreter.
"""

import sys

from . import compat
from .dependencies import check_dependencies, find_problems
from .registration import all_modules_registered, build_registered, register_all_modules
from .version import __version__, version_info

if find_problems():  # versions only: checking mmcv's compiled ops would import mmcv and torch
    check_dependencies()  # raises, listing every problem and its fix

compat.apply_import_fixes()

if 'mmengine' in sys.modules:  # rule 3: a config's custom_imports, under mim or a Runner
    register_all_modules()

__all__ = [
    '__version__',
    'all_modules_registered',
    'build_registered',
    'compat',
    'register_all_modules',
    'version_info',
]
