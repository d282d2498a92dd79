"""Compatibility fixes that make the plain PyPI installs of the pinned stack work.

Every function below fixes one known trap of the pinned versions
(mmengine 0.10.7, mmcv 2.1.0, mmdet 3.3.0, mmaction2 1.2.0 on torch >= 2.6 and
numpy 2), without editing any file in ``site-packages``. The fixes that must
come before mmaction2 is imported (:func:`apply_import_fixes`) are applied when
:mod:`pcca_plugin` is imported; :func:`apply_all` adds the checkpoint fix when
the plugin registers its components (see ``pcca_plugin/__init__.py``), so
``custom_imports = dict(imports=['pcca_plugin'])`` in a config is enough.
Each fix is idempotent and does nothing where the installed packages do not
have the problem.

If your own script imports ``mmaction.models`` before ``pcca_plugin``, import
``pcca_plugin`` first (or call :func:`apply_all`), otherwise the mmaction2
import fails before the plugin can help.
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import pickle
import sys
import types
from typing import List

#: Name of the mmaction2 package that the 1.2.0 wheel forgot to ship.
DRN_PACKAGE = 'mmaction.models.localizers.drn'
#: Its module that ``mmaction/models/localizers/__init__.py`` imports.
DRN_MODULE = DRN_PACKAGE + '.drn'

_applied: List[str] = []


class _MissingDRN:
    """Placeholder for mmaction2's DRN localizer, absent from the 1.2.0 wheel.

    Building it raises an error that says why and how to get the real one.
    """

    def __init__(self, *args, **kwargs):
        raise ImportError(
            'DRN is not part of the mmaction2 1.2.0 wheel on PyPI (its '
            "'mmaction/models/localizers/drn/' folder is missing), so "
            'pcca_plugin.compat replaced it with this placeholder. To use DRN, '
            'install mmaction2 from source: '
            'pip install git+https://github.com/open-mmlab/mmaction2.git@v1.2.0'
        )


class _DRNStubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import-system finder that provides ``mmaction.models.localizers.drn``.

    It sits at the end of ``sys.meta_path``, so it is only asked after the
    regular finders failed, i.e. only when the real package is missing.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in (DRN_PACKAGE, DRN_MODULE):
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=(fullname == DRN_PACKAGE))

    def create_module(self, spec):
        return types.ModuleType(spec.name)

    def exec_module(self, module):
        module.__file__ = f'<pcca_plugin.compat stub for {module.__name__}>'
        if module.__name__ == DRN_PACKAGE:
            module.__path__ = []
        else:
            module.DRN = _MissingDRN
            # Registered like the real one, so building `type='DRN'` explains itself.
            from mmaction.registry import MODELS

            MODELS.register_module('DRN', module=_MissingDRN, force=True)
        module.__doc__ = 'Stub installed by pcca_plugin.compat; see _MissingDRN.'


def fix_mmaction_missing_drn() -> bool:
    """mmaction2 1.2.0 (PyPI): ``mmaction/models/localizers/drn/`` is missing.

    ``mmaction/models/localizers/__init__.py`` does ``from .drn.drn import DRN``,
    so ``import mmaction.models`` raises ``ModuleNotFoundError`` on a plain
    ``pip install mmaction2==1.2.0``. We add an import finder of last resort
    that serves a stub ``drn`` package whose ``DRN`` raises a clear error when
    built. The real package, when installed (from source), always wins.

    Returns:
        bool: True when the finder was installed by this call.
    """
    if any(isinstance(finder, _DRNStubFinder) for finder in sys.meta_path):
        return False
    sys.meta_path.append(_DRNStubFinder())
    return True


def fix_mmaction_importlib_metadata() -> bool:
    """mmaction2 1.2.0 imports ``importlib_metadata`` without declaring it.

    ``mmaction/utils/dependency.py`` does
    ``from importlib_metadata import PackageNotFoundError, distribution``.
    pcca_plugin's ``setup.py`` installs the backport; when it is still
    missing (a bare environment), the standard library's
    :mod:`importlib.metadata` offers the same two names and is aliased.

    Returns:
        bool: True when the alias was installed by this call.
    """
    if 'importlib_metadata' in sys.modules:
        return False
    try:  # look for the backport without importing it (its import adds a finder to sys.meta_path)
        installed = importlib.util.find_spec('importlib_metadata') is not None
    except ImportError:
        installed = False
    if installed:
        return False
    sys.modules['importlib_metadata'] = importlib.metadata
    return True


def history_buffer_getattr(owner, name: str):
    """A ``getattr`` that only resolves mmengine ``HistoryBuffer`` statistics methods.

    torch pickles the ``HistoryBuffer.min``-style methods that mmengine 0.10.7
    stores in a checkpoint's ``MessageHub`` as ``getattr(HistoryBuffer, 'min')``
    (protocol 2). Allow-listing the real ``builtins.getattr`` would let a
    malicious checkpoint reach any attribute of any allowed object; this one is
    registered under that name instead and refuses everything else.

    Raises:
        pickle.UnpicklingError: any other owner or name; ``torch.load`` reports
            it as a failed ``weights_only`` load, with this message.
    """
    from mmengine.logging.history_buffer import HistoryBuffer

    builtin_statistics = ('min', 'max', 'current', 'mean')
    is_statistic = isinstance(name, str) and (
        name in builtin_statistics or name in HistoryBuffer._statistics_methods
    )
    if owner is HistoryBuffer and is_statistic:
        return getattr(owner, name)
    raise pickle.UnpicklingError(
        f'weights_only checkpoint loading: refusing getattr({owner!r}, {name!r}); only '
        'mmengine HistoryBuffer statistics methods are allowed (pcca_plugin.compat)'
    )


def _numpy_multiarray():
    """``numpy._core.multiarray`` (numpy >= 1.26) or ``numpy.core.multiarray`` (older)."""
    try:
        return importlib.import_module('numpy._core.multiarray')
    except ImportError:  # pragma: no cover - numpy < 1.26
        return importlib.import_module('numpy.core.multiarray')


#: Modules under which numpy 1.x and numpy 2 pickle their array/scalar reconstructors.
NUMPY_PICKLE_MODULES = ('numpy.core.multiarray', 'numpy._core.multiarray')
#: dtype kinds a checkpoint's arrays and scalars may have: bool, int, uint, float.
CHECKPOINT_DTYPE_KINDS = 'biuf'


def numeric_dtype_classes() -> list:
    """numpy's dtype classes (``numpy.dtypes.Float64DType``...) of the kinds in
    :data:`CHECKPOINT_DTYPE_KINDS`; empty before numpy 1.25, which has none.

    torch's unpickler sets the state of an unpickled ``numpy.dtype(...)`` only
    when the object's class is allowed, and since numpy 1.25 that class is the
    dtype's own (``type(np.dtype('f8'))`` is ``Float64DType``). Object, string,
    void and datetime dtypes are not among them: no mmengine checkpoint holds
    them, and an object array could hold anything.
    """
    import numpy as np

    dtypes = getattr(np, 'dtypes', None)
    classes = []
    for name in sorted(dir(dtypes)) if dtypes is not None else ():
        cls = getattr(dtypes, name)
        is_dtype_class = isinstance(cls, type) and issubclass(cls, np.dtype) and cls is not np.dtype
        if not is_dtype_class or cls in classes:
            continue
        try:
            kind = np.dtype(cls.type).kind
        except TypeError:  # e.g. StringDType, whose scalar type is str
            continue
        if kind in CHECKPOINT_DTYPE_KINDS:
            classes.append(cls)
    return classes


def mmengine_checkpoint_safe_globals() -> list:
    """The globals, beyond torch's defaults, that checkpoints of mmengine 0.10.7 need.

    ``Runner.save_checkpoint`` stores the ``MessageHub`` state:
    ``HistoryBuffer`` objects holding numpy arrays, references to their
    statistics methods (pickled as ``getattr(HistoryBuffer, 'mean')``), and
    numpy scalars (``meta['seed']`` and logged values). A real checkpoint
    names exactly these globals beyond what torch already allows
    (``collections.Counter`` of the schedulers' milestones and
    ``_codecs.encode`` of protocol-2 bytes are among torch's defaults);
    ``tests/test_compat.py`` checks the two sets are equal.
    numpy's two reconstructors are listed under their numpy 1.x and numpy 2
    names, so a checkpoint written in either environment loads. Besides the
    named globals, torch needs the class of every dtype whose state it sets:
    only the numeric ones (:func:`numeric_dtype_classes`), not ``ObjectDType``.
    These are data, not code.
    """
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer

    multiarray = _numpy_multiarray()
    safe = [
        HistoryBuffer,
        np.ndarray,
        np.dtype,
        (history_buffer_getattr, 'builtins.getattr'),
    ]
    for module_name in NUMPY_PICKLE_MODULES:
        for attr in ('_reconstruct', 'scalar'):
            safe.append((getattr(multiarray, attr), f'{module_name}.{attr}'))
    safe.extend(numeric_dtype_classes())
    return safe


def fix_torch_weights_only_checkpoints() -> bool:
    """torch >= 2.6 loads with ``weights_only=True``; mmengine 0.10.7 checkpoints fail.

    mmengine 0.10.7 calls ``torch.load(filename, map_location=...)`` for
    ``load_from``, ``resume`` and ``load_checkpoint``; under torch's new
    default the unpickler rejects mmengine's ``HistoryBuffer`` and numpy
    objects in the checkpoint. Rather than turning the safety off, we
    allow-list exactly those (:func:`mmengine_checkpoint_safe_globals`) with
    ``torch.serialization.add_safe_globals``, so other checkpoints are still
    loaded safely: a checkpoint naming ``os.system``, ``builtins.eval`` or any
    other global is refused, and ``getattr`` resolves only
    :func:`history_buffer_getattr`'s statistics methods. Nothing to do on
    torch < 2.4, which has no allow-list and did not default to ``weights_only``.

    Returns:
        bool: True when this call allow-listed something not allowed before
        (calling it again changes nothing and returns False).
    """
    import torch.serialization as serialization

    if not hasattr(serialization, 'add_safe_globals'):
        return False
    wanted = mmengine_checkpoint_safe_globals()
    get_safe_globals = getattr(serialization, 'get_safe_globals', list)  # torch >= 2.5
    before = set(get_safe_globals())
    if all(entry in before for entry in wanted):
        return False
    serialization.add_safe_globals(wanted)
    return True


def load_mmengine_checkpoint(path: str, map_location: str = 'cpu'):
    """Read a checkpoint as mmengine does, with the checkpoint fix applied first.

    For the plugin's own readers of mmengine checkpoints (checkpoint surgery,
    pretrained weights, the person detector): they work in a script that
    never called ``pcca_plugin.register_all_modules()``, as in one that did.
    A local path, URL or ``open-mmlab://`` name, as
    ``mmengine.runner.checkpoint._load_checkpoint`` takes it.
    """
    from mmengine.runner.checkpoint import _load_checkpoint

    fix_torch_weights_only_checkpoints()
    return _load_checkpoint(path, map_location=map_location)


def apply_import_fixes() -> List[str]:
    """Apply the fixes that must precede mmaction2's import and import nothing heavy.

    ``import pcca_plugin`` calls this (it must not load torch or an
    OpenMMLab package); :func:`apply_all`, called when the components are
    registered, adds :func:`fix_torch_weights_only_checkpoints`, which
    imports torch and mmengine. Returns the names applied so far.
    """
    for fix in (fix_mmaction_missing_drn, fix_mmaction_importlib_metadata):
        if fix.__name__ not in _applied and fix():
            _applied.append(fix.__name__)
    return list(_applied)


def apply_all() -> List[str]:
    """Apply every fix once; return the names of the fixes that changed something."""
    fixes = (
        fix_mmaction_missing_drn,
        fix_mmaction_importlib_metadata,
        fix_torch_weights_only_checkpoints,
    )
    for fix in fixes:
        if fix.__name__ not in _applied and fix():
            _applied.append(fix.__name__)
    return list(_applied)
