"""pcca_plugin: Person-Context Cross Attention for spatio-temporal action detection.

What importing the package costs follows what is used (the lazy loading of
the scientific Python packages, SPEC 1):

* ``import pcca_plugin`` checks the installed OpenMMLab versions (from the
  package metadata) and installs the compatibility fixes that must precede
  mmaction2's import (:func:`pcca_plugin.compat.apply_import_fixes`); it
  imports neither torch nor an OpenMMLab package.
* Registering the components (:func:`register_all_modules`) checks that mmcv
  has its compiled ops, applies every compatibility fix and imports every
  subpackage. It happens

  - at once when torch or an OpenMMLab package is already imported, as under
    ``mim train``, ``tools/train.py`` or any mmengine ``Runner``, where the
    config's ``custom_imports = dict(imports=['pcca_plugin'],
    allow_failed_imports=False)`` imports the package after mmengine;
  - otherwise as soon as the first import statement that loads one of them
    has finished, or when a heavy subpackage (``pcca_plugin.models``, ...)
    is first used, or when :func:`register_all_modules` is called.

So ``import pcca_plugin.evaluation`` and ``tools/eval_multisports.py`` stay
pure numpy (``tests/test_evaluation/test_light_imports.py``), and
``custom_imports`` still registers every component
(``tests/test_foundation/test_mim_entry.py``).
"""

import builtins
import functools
import importlib
import sys
import threading

from .dependencies import check_dependencies, find_problems
from .version import __version__, version_info

if find_problems():  # versions only: checking mmcv's compiled ops would import mmcv and torch
    check_dependencies()  # raises, listing every problem and its fix

from . import compat  # noqa: E402

compat.apply_import_fixes()

#: Subpackages that import numpy only; loaded on first access without registering anything.
LIGHT_SUBMODULES = ('evaluation', 'utils')
#: Subpackages that import torch and the OpenMMLab stack.
HEAVY_SUBMODULES = ('datasets', 'engine', 'models', 'proposals', 'visualization')
#: Modules whose import registers components (the metric lives in a light subpackage).
REGISTERING_MODULES = HEAVY_SUBMODULES + ('evaluation', 'evaluation.metrics', 'utils')
#: Top-level packages of the stack; once one is imported, every component is registered.
HEAVY_PACKAGES = ('torch', 'mmengine', 'mmcv', 'mmdet', 'mmaction')

_registered = False


def register_all_modules() -> None:
    """Apply every compatibility fix and import every subpackage (registers all components).

    Called by the package itself when needed (see the module docstring);
    calling it again does nothing.
    """
    global _registered
    if _registered:
        return
    _registered = True
    _watcher.uninstall()
    check_dependencies()  # now with mmcv's compiled ops
    compat.apply_all()
    for name in REGISTERING_MODULES:
        importlib.import_module(f'{__name__}.{name}')


def _heavy_stack_imported() -> bool:
    """Whether torch or an OpenMMLab package is imported and none is still being imported."""
    loaded = [sys.modules[name] for name in HEAVY_PACKAGES if name in sys.modules]
    busy = [m for m in loaded if getattr(getattr(m, '__spec__', None), '_initializing', False)]
    return bool(loaded) and not busy


class _RegisterAfterHeavyImport:
    """Wrap ``builtins.__import__`` to register every component after an import statement.

    The wrapper acts when an outermost import statement (not one nested in
    another import) has finished and torch or an OpenMMLab package is then
    fully imported, so registering never runs inside a half-imported package.
    It takes itself out of ``builtins.__import__`` once the components are
    registered. It is a plain function carrying the builtin's name
    (``functools.wraps``), so code that inspects or pickles ``__import__``
    meanwhile sees ``builtins.__import__`` as usual.
    """

    def __init__(self):
        self._depth = threading.local()
        self._original = None
        self._wrapper = None

    def install(self) -> None:
        original = self._original = builtins.__import__
        depth = self._depth

        @functools.wraps(original)
        def __import__(name, globals=None, locals=None, fromlist=(), level=0):
            outer = getattr(depth, 'value', 0)
            depth.value = outer + 1
            try:
                module = original(name, globals, locals, fromlist, level)
            finally:
                depth.value = outer
            if outer == 0 and not _registered and _heavy_stack_imported():
                register_all_modules()
            return module

        self._wrapper = builtins.__import__ = __import__

    def uninstall(self) -> None:
        if self._wrapper is not None and builtins.__import__ is self._wrapper:
            builtins.__import__ = self._original


_watcher = _RegisterAfterHeavyImport()


def __getattr__(name: str):
    """Load a subpackage on first access; a heavy one registers every component first."""
    if name in HEAVY_SUBMODULES:
        register_all_modules()
        return importlib.import_module(f'{__name__}.{name}')
    if name in LIGHT_SUBMODULES:
        return importlib.import_module(f'{__name__}.{name}')
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
    return sorted(set(globals()) | set(LIGHT_SUBMODULES) | set(HEAVY_SUBMODULES))


if any(name in sys.modules for name in HEAVY_PACKAGES):
    register_all_modules()  # the stack is loaded anyway, e.g. custom_imports under a Runner
else:
    _watcher.install()

__all__ = [
    '__version__',
    'version_info',
    'compat',
    'register_all_modules',
    'datasets',
    'engine',
    'evaluation',
    'models',
    'proposals',
    'utils',
    'visualization',
]
