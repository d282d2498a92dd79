"""Pickle I/O for MultiSports files: restricted loading, numpy-1-compatible dumping.

MultiSports ships its ground truth and expects submissions as pickles. Two
problems come with that:

* A pickle can run arbitrary code when loaded. :func:`load_pickle` uses an
  unpickler that only admits builtin containers/scalars and numpy arrays,
  dtypes and scalars; anything else raises :class:`UnsafePickleError` naming
  the file and the refused global.
* numpy 2 writes arrays through ``numpy._core.multiarray._reconstruct``, a
  module numpy 1.x does not have, so the official evaluation tool under
  numpy 1.26 cannot read a pickle written by numpy 2. :func:`dump_pickle`
  writes every array as ``numpy.ndarray(shape, dtype_str, bytearray, ...)``
  and every numpy scalar as the matching Python scalar, names that exist in
  every numpy version.
"""

import io
import os
import os.path as osp
import pickle
import tempfile
from typing import Any, Union

import numpy as np

#: Globals a MultiSports pickle may name: (module, name) pairs.
_SAFE_BUILTINS = {
    'dict',
    'list',
    'tuple',
    'set',
    'frozenset',
    'str',
    'bytes',
    'bytearray',
    'int',
    'float',
    'complex',
    'bool',
    'slice',
    'range',
}
_NUMPY_MODULES = (
    'numpy.core.multiarray',
    'numpy._core.multiarray',
    'numpy.core.numeric',
    'numpy._core.numeric',
)
_NUMPY_ARRAY_GLOBALS = {'_reconstruct', 'scalar', '_frombuffer'}


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle named a global that is not plain data."""


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler admitting only builtin containers and numpy data types."""

    def __init__(self, file, source: str):
        super().__init__(file, encoding='latin1')
        self._source = source

    def find_class(self, module: str, name: str):
        if module == 'builtins' and name in _SAFE_BUILTINS:
            return super().find_class(module, name)
        if module == 'collections' and name in ('OrderedDict', 'defaultdict'):
            return super().find_class(module, name)
        if module in _NUMPY_MODULES and name in _NUMPY_ARRAY_GLOBALS:
            # Resolve through the public numpy so numpy 1 and 2 both work.
            return getattr(_numpy_multiarray(), name)
        if module == 'numpy' and name in ('ndarray', 'dtype'):
            return getattr(np, name)
        if module == 'numpy.dtypes' and name.endswith('DType'):
            return getattr(np.dtypes, name)
        raise UnsafePickleError(
            f'{self._source}: refusing to unpickle {module}.{name}; MultiSports files may '
            'only hold numpy arrays and builtin containers (dict, list, tuple, str, '
            'numbers). Re-save the file with plain data.'
        )


def _numpy_multiarray():
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    return multiarray


def load_pickle(path: str) -> Any:
    """Load a MultiSports pickle (GT or detections) without executing code.

    Args:
        path: file to read.

    Raises:
        FileNotFoundError: the file does not exist (the message names it).
        UnsafePickleError: the pickle names a non-data global.
        pickle.UnpicklingError: the file is truncated or not a pickle.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such file')
    with open(path, 'rb') as f:
        data = f.read()
    try:
        return _RestrictedUnpickler(io.BytesIO(data), source=path).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise pickle.UnpicklingError(
            f'{path}: not a readable pickle ({type(exc).__name__}: {exc}); the file may be '
            'truncated or corrupted. Re-create it.'
        ) from exc


class _Numpy1CompatiblePickler(pickle.Pickler):
    """Pickler that writes numpy data under names every numpy version has."""

    def reducer_override(self, obj):
        if isinstance(obj, np.ndarray):
            if obj.dtype.hasobject:
                raise TypeError('cannot write an object array to a MultiSports pickle')
            array = np.ascontiguousarray(obj)
            # numpy.ndarray(shape, dtype, buffer): a bytearray keeps the array writable.
            return np.ndarray, (array.shape, array.dtype.str, bytearray(array.tobytes()))
        if isinstance(obj, np.generic):
            value = obj.item()
            return type(value), (value,)
        return NotImplemented


def dump_pickle(obj: Any, path: Union[str, os.PathLike], protocol: int = 4) -> None:
    """Write ``obj`` so that numpy 1.x and 2.x can read it; atomic (temp file, rename).

    Args:
        obj: builtin containers, numbers, strings and numpy arrays/scalars.
        path: destination; its folder is created. A partial file never
            replaces an existing one.
        protocol: pickle protocol (4 is readable by Python >= 3.4).
    """
    path = os.fspath(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + osp.basename(path), suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            _Numpy1CompatiblePickler(f, protocol=protocol).dump(obj)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
