"""Pickle I/O for MultiSports files: restricted loading, numpy-1-compatible writing.

MultiSports ships its ground truth and expects submissions as pickles. Three
problems come with that:

* A pickle can run arbitrary code when loaded. :func:`load_pickle` uses an
  unpickler that resolves a global only from a fixed allow-list of plain-data
  constructs (below); anything else raises :class:`UnsafePickleError` naming
  the file and the refused global, *before* anything is called.
* The files come from many writers: the MultiSports release and the tools
  around it (the official evaluation, mmaction2) write protocol 2 from
  numpy 1.x, where an array is ``numpy.core.multiarray._reconstruct`` plus its
  bytes through ``_codecs.encode``; numpy 2 writes ``numpy._core...``;
  protocol 5 writes ``numpy.core.numeric._frombuffer`` (numpy 1) or
  ``numpy._core.numeric._frombuffer`` (numpy 2) with an in-band buffer;
  Python 2 writes ``__builtin__`` names and ``str`` as byte strings
  (``BINSTRING``), which are decoded as latin-1, as numpy documents for
  Python-2 pickles. All of these load, under numpy 1.x and 2.x.
* numpy 2 writes arrays through ``numpy._core.multiarray._reconstruct``, a
  module numpy < 1.26 does not have, so the official evaluation tool in an
  older environment cannot read a pickle written plainly by numpy 2.
  :func:`dump_pickle` writes names every numpy version has (see
  :data:`PICKLE_STYLES`).

What the loader admits (everything else is refused):

============================================  ==============================================
global named by the pickle                    why a plain-data pickle names it
============================================  ==============================================
``builtins`` / ``__builtin__`` containers      ``dict``, ``list``, ``set``, ``bytes``... (types
and scalars (:data:`SAFE_BUILTINS`)           only; no function such as ``eval``/``getattr``)
``collections.OrderedDict`` / ``defaultdict``  ordered / default dicts
``_codecs.encode`` (latin-1 only)             ``bytes`` under protocols 0-2 (the array bytes)
``numpy.ndarray``, ``numpy.dtype``            array and dtype reconstruction
``numpy[._]core.multiarray._reconstruct``     arrays, numpy 1.x / 2.x, protocols 0-4
``numpy[._]core.multiarray.scalar``           numpy scalars (``np.float32(...)``)
``numpy[._]core.numeric._frombuffer``         arrays under protocol 5
``numpy.dtypes.<Name>DType``                  numpy >= 1.25 dtype classes
============================================  ==============================================

A refused global is never imported: the check is on the names, then the
allowed objects are taken from numpy / builtins directly. The ``_codecs.encode``
the pickle gets is a wrapper that only converts text to bytes with latin-1,
the one codec pickle itself uses; any other encoding is refused.
"""

import _compat_pickle
import builtins
import codecs
import collections
import contextlib
import importlib
import io
import os
import os.path as osp
import pickle
import struct
import tempfile
from typing import Any, BinaryIO, Dict, Tuple, Union

import numpy as np

#: ``builtins`` a plain-data pickle may name: data types only, never a function.
SAFE_BUILTINS = frozenset(
    {
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
)
#: ``collections`` types a plain-data pickle may name.
SAFE_COLLECTIONS = frozenset({'OrderedDict', 'defaultdict'})
#: The codec of pickle's ``bytes`` (protocols 0-2): ``_codecs.encode(text, 'latin1')``.
BYTES_CODEC = 'latin1'
_BYTES_CODEC_SPELLINGS = frozenset({'latin1', 'latin-1'})
#: numpy reconstructors: (module, name) as a pickle spells it -> (numpy core submodule, name).
NUMPY_RECONSTRUCTORS: Dict[Tuple[str, str], Tuple[str, str]] = {
    ('numpy.core.multiarray', '_reconstruct'): ('multiarray', '_reconstruct'),
    ('numpy._core.multiarray', '_reconstruct'): ('multiarray', '_reconstruct'),
    ('numpy.core.multiarray', 'scalar'): ('multiarray', 'scalar'),
    ('numpy._core.multiarray', 'scalar'): ('multiarray', 'scalar'),
    ('numpy.core.numeric', '_frombuffer'): ('numeric', '_frombuffer'),
    ('numpy._core.numeric', '_frombuffer'): ('numeric', '_frombuffer'),
}
#: How :func:`dump_pickle` writes numpy data; see :func:`dumps_pickle`.
PICKLE_STYLES = ('portable', 'numpy1')
#: First protocol with opcodes for ``bytes``; below it they are ``_codecs.encode`` calls.
BYTES_OPCODES_PROTOCOL = 3


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle named a global that is not plain data (or that this numpy lacks)."""


def _numpy_core(submodule: str):
    """``numpy._core.<submodule>`` (numpy >= 1.26) or ``numpy.core.<submodule>`` (older)."""
    try:
        return importlib.import_module(f'numpy._core.{submodule}')
    except ImportError:  # pragma: no cover - numpy < 1.26
        return importlib.import_module(f'numpy.core.{submodule}')


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler admitting only the plain-data globals listed in the module docstring.

    Python 2 byte strings are decoded as latin-1 (``encoding='latin1'``), which
    keeps their bytes: numpy turns such text back into the array / scalar bytes.
    """

    def __init__(self, file, source: str):
        super().__init__(file, encoding='latin1')
        self._source = source

    def find_class(self, module: str, name: str):
        written = f'{module}.{name}'
        # Python 2 names (``__builtin__.set``, ``copy_reg``...) -> Python 3, as pickle does.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        else:
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if module == 'builtins' and name in SAFE_BUILTINS:
            return getattr(builtins, name)
        if module == 'collections' and name in SAFE_COLLECTIONS:
            return getattr(collections, name)
        if module == '_codecs' and name == 'encode':
            return self._encode_bytes
        if (module, name) in NUMPY_RECONSTRUCTORS:
            submodule, attr = NUMPY_RECONSTRUCTORS[(module, name)]
            return getattr(_numpy_core(submodule), attr)
        if module == 'numpy' and name in ('ndarray', 'dtype'):
            return getattr(np, name)
        if module == 'numpy.dtypes':
            return self._dtype_class(name)
        python3_name = f'{module}.{name}'
        if python3_name != written:  # a Python 2 name, e.g. commands.run = subprocess.run
            written = f'{written} (Python 3: {python3_name})'
        raise UnsafePickleError(
            f'{self._source}: refusing to unpickle {written}; MultiSports files may only hold '
            'numpy arrays and builtin containers (dict, list, tuple, str, numbers), and loading '
            'anything else could run code. Re-save the file with plain data.'
        )

    def _encode_bytes(self, text, encoding: str = 'utf-8', errors: str = 'strict') -> bytes:
        """``_codecs.encode`` restricted to what pickle writes: ``encode(str, 'latin1')``."""
        if (
            not isinstance(text, str)
            or encoding not in _BYTES_CODEC_SPELLINGS
            or errors != 'strict'
        ):
            raise UnsafePickleError(
                f'{self._source}: refusing _codecs.encode({type(text).__name__}, {encoding!r}, '
                f"{errors!r}); pickles only use _codecs.encode(str, '{BYTES_CODEC}') for bytes"
            )
        return text.encode(BYTES_CODEC)

    def _dtype_class(self, name: str) -> type:
        """``numpy.dtypes.<name>``: only a dtype class this numpy has."""
        dtypes = getattr(np, 'dtypes', None)
        candidate = getattr(dtypes, name, None) if name.isidentifier() else None
        if isinstance(candidate, type) and issubclass(candidate, np.dtype):
            return candidate
        raise UnsafePickleError(
            f'{self._source}: the pickle names numpy.dtypes.{name}, which is not a dtype class '
            f'of the installed numpy {np.__version__}; a file written by a newer numpy needs '
            'that numpy, anything else is refused'
        )


#: Errors of a pickle that is not a readable one (truncated, corrupted, inconsistent).
UNREADABLE_PICKLE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    IndexError,
    KeyError,
    OverflowError,
)


def unreadable_pickle_error(path, exc: BaseException) -> pickle.UnpicklingError:
    """The error for a pickle that raised ``exc`` (one of :data:`UNREADABLE_PICKLE_ERRORS`)."""
    return pickle.UnpicklingError(
        f'{path}: not a readable pickle ({type(exc).__name__}: {exc}); the file may be '
        'truncated or corrupted. Re-create it.'
    )


def loads_pickle(data: Union[bytes, BinaryIO], source: str) -> Any:
    """Unpickle ``data`` without executing code; ``source`` names it in errors.

    The one path through the restricted unpickler: :func:`load_pickle` reads a
    file with it, and a member of a zip archive is unpickled from its bytes
    (never extracted to disk).

    Args:
        data: the pickle's bytes, or a binary stream positioned at the pickle
            (read as far as the pickle goes, never whole into memory).
        source: what the bytes are, for messages (a path, ``'A.zip:member.pkl'``).

    Raises:
        UnsafePickleError: the pickle names a non-data global (the message
            names ``source`` and the global); nothing of it was called.
        pickle.UnpicklingError: the bytes are truncated or not a pickle.
    """
    file = data if hasattr(data, 'read') else io.BytesIO(data)
    return run_unpickler(_RestrictedUnpickler(file, source=source), source)


def run_unpickler(unpickler: pickle.Unpickler, source: str) -> Any:
    """``unpickler.load()``, an unreadable pickle reported as one naming ``source``.

    Raises:
        UnsafePickleError: as raised by a restricted unpickler.
        pickle.UnpicklingError: truncated, corrupted or not a pickle.
    """
    try:
        return unpickler.load()
    except UnsafePickleError:
        raise
    except UNREADABLE_PICKLE_ERRORS as exc:
        raise unreadable_pickle_error(source, exc) from exc


def load_pickle(path: Union[str, os.PathLike]) -> Any:
    """Load a MultiSports pickle (GT or detections) without executing code.

    Reads protocols 0 to 5 written by Python 2 or 3 with numpy 1.x or 2.x
    (the constructs listed in the module docstring); :func:`loads_pickle` on
    the file's bytes.

    Args:
        path: file to read.

    Raises:
        FileNotFoundError: the file does not exist (the message names it).
        UnsafePickleError: the pickle names a non-data global (the message
            names the file and the global); nothing of it was called.
        pickle.UnpicklingError: the file is truncated or not a pickle.
    """
    path = os.fspath(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such file')
    with open(path, 'rb') as f:
        data = f.read()
    return loads_pickle(data, path)


#: Text this long (in UTF-8 bytes) or longer is the latin-1 text of array bytes in a
#: protocol-2 pickle (numpy 1.x's ``_codecs.encode(text, 'latin1')``); decoded in chunks.
LEAN_TEXT_MIN_BYTES = 1 << 20
#: Chunk of such text decoded at a time.
LEAN_TEXT_CHUNK_BYTES = 1 << 24
#: The protocol whose large array bytes travel as text.
TEXT_BYTES_PROTOCOL = 2


class _Latin1Buffer(bytearray):
    """The bytes of a long latin-1 text, decoded straight from its UTF-8 (one copy in memory)."""


class _TextArrayUnpickler(pickle._Unpickler):
    """The restricted unpickler for protocol-2 pickles of large arrays, with one copy of the data.

    Protocol 2 carries an array's bytes as a latin-1 text (``BINUNICODE``)
    turned back into bytes by ``_codecs.encode``. The C unpickler holds the
    UTF-8 bytes, the text and the bytes at once (up to four times the
    array). Here a long text is decoded chunk by chunk into one
    :class:`_Latin1Buffer`, ``_codecs.encode`` passes it on, and the array is
    built on it (``np.frombuffer``) instead of copied by ``ndarray.__setstate__``.
    The globals are checked exactly as by the C restricted unpickler.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, file, source: str):
        super().__init__(file, encoding='latin1')
        self._source = source

    find_class = _RestrictedUnpickler.find_class
    _dtype_class = _RestrictedUnpickler._dtype_class

    def _encode_bytes(self, text, encoding: str = 'utf-8', errors: str = 'strict') -> bytes:
        if isinstance(text, _Latin1Buffer) and encoding in _BYTES_CODEC_SPELLINGS:
            return text
        return _RestrictedUnpickler._encode_bytes(self, text, encoding, errors)

    def _load_binunicode(self) -> None:
        (size,) = struct.unpack('<I', self.read(4))
        if size < LEAN_TEXT_MIN_BYTES:
            self.append(str(self.read(size), 'utf-8', 'surrogatepass'))
            return
        decoder = codecs.getincrementaldecoder('utf-8')()
        out, remaining = _Latin1Buffer(), size
        while remaining:
            chunk = self.read(min(LEAN_TEXT_CHUNK_BYTES, remaining))
            if not chunk:
                raise pickle.UnpicklingError('pickle data was truncated')
            remaining -= len(chunk)
            out += decoder.decode(chunk, final=not remaining).encode(BYTES_CODEC)
        self.append(out)

    dispatch[pickle.BINUNICODE[0]] = _load_binunicode

    def _load_build(self) -> None:
        state, instance = self.stack[-1], self.stack[-2]
        if (
            isinstance(instance, np.ndarray)
            and isinstance(state, tuple)
            and len(state) == len(NDARRAY_STATE_FIELDS)
            and isinstance(state[-1], _Latin1Buffer)
        ):
            self.stack.pop()
            _, shape, dtype, is_fortran, data = state
            array = np.frombuffer(data, dtype=dtype).reshape(
                shape, order='F' if is_fortran else 'C'
            )
            self.stack[-1] = array
            for key, value in self.memo.items():  # later references get the array too
                if value is instance:
                    self.memo[key] = array
            return
        pickle._Unpickler.load_build(self)

    dispatch[pickle.BUILD[0]] = _load_build


#: ``ndarray.__setstate__``'s tuple: version, shape, dtype, is_fortran, data.
NDARRAY_STATE_FIELDS = ('version', 'shape', 'dtype', 'is_fortran', 'data')


def is_text_bytes_pickle(head: bytes) -> bool:
    """Whether a pickle starting with ``head`` is protocol 2 (large bytes as latin-1 text)."""
    return head[:2] == pickle.PROTO + bytes([TEXT_BYTES_PROTOCOL])


def unpickle_text_arrays(file, source: str) -> Any:
    """Unpickle a protocol-2 pickle of large arrays from ``file`` with one copy of their data.

    The restricted loader (the same globals as :func:`load_pickle`); arrays
    come back writable, on their own buffer.

    Raises:
        UnsafePickleError: a non-data global, named with ``source``.
        pickle.UnpicklingError: not a readable pickle.
    """
    return run_unpickler(_TextArrayUnpickler(file, source), source)


class _PortablePickler(pickle.Pickler):
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


class _PickledName:
    """A global that is written under a fixed ``module`` and ``name`` (numpy 1.x spelling)."""

    __slots__ = ('module', 'name')

    def __init__(self, module: str, name: str):
        self.module = module
        self.name = name

    def __call__(self, *args):
        # Callable only so that pickle accepts it as the function of a reduction.
        raise TypeError(f'{self.module}.{self.name} is a name to write, not a function')


def _numpy1_names() -> Dict[Any, _PickledName]:
    """numpy's reconstructors -> the names numpy 1.x pickles give them."""
    names = {}
    for (module, name), (submodule, attr) in NUMPY_RECONSTRUCTORS.items():
        if module.startswith('numpy.core.'):
            names[getattr(_numpy_core(submodule), attr)] = _PickledName(module, name)
    return names


class _Numpy1Pickler(pickle._Pickler):
    """Pure-Python pickler that spells numpy's reconstructors as numpy 1.x does.

    Arrays, numpy scalars and dtypes are reduced by numpy itself
    (``ndarray.__reduce_ex__``, ``generic.__reduce__``, ``dtype.__reduce__``,
    which numpy 2 kept from numpy 1); only the function each reduction names
    is written under its numpy 1.x module, ``numpy.core.multiarray`` /
    ``numpy.core.numeric``, instead of numpy 2's ``numpy._core...``. The
    pure-Python pickler is used because the C one always writes a function
    under its own ``__module__``.
    """

    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, file, protocol: int, python2_globals: bool = False):
        super().__init__(file, protocol=protocol)
        # One object per name, so that a name is written once and then memo-referenced.
        self._numpy1_names = _numpy1_names()
        self._python2_globals = python2_globals

    def reducer_override(self, obj):
        if not isinstance(obj, (np.ndarray, np.generic)):
            return NotImplemented
        reduced = obj.__reduce_ex__(self.proto)
        function = reduced[0]
        if function in self._numpy1_names:
            return (self._numpy1_names[function],) + tuple(reduced[1:])
        return reduced

    def _save_pickled_name(self, obj: _PickledName) -> None:
        # The opcodes pickle.Pickler.save_global writes for a module-level name.
        if self.proto >= 4:
            self.save(obj.module)
            self.save(obj.name)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f'{obj.module}\n{obj.name}\n'.encode('ascii'))
        self.memoize(obj)

    dispatch[_PickledName] = _save_pickled_name

    def _save_bytes(self, obj: bytes) -> None:
        # Under protocols 0-2 Python 3 writes b'' as ``__builtin__.bytes()``, a global no
        # Python 2 pickle names; the text form ``_codecs.encode(u'', 'latin1')`` is the one
        # every other byte string gets, and Python 2.7 turns it into the empty ``str``.
        if self._python2_globals and self.proto < BYTES_OPCODES_PROTOCOL and not obj:
            self.save_reduce(codecs.encode, ('', BYTES_CODEC), obj=obj)
            return
        super().save_bytes(obj)

    dispatch[bytes] = _save_bytes


def dumps_pickle(
    obj: Any, protocol: int = 4, style: str = 'portable', python2_globals: bool = False
) -> bytes:
    """Serialise ``obj`` in one of :data:`PICKLE_STYLES`.

    Args:
        obj: builtin containers, numbers, strings and numpy arrays/scalars.
        protocol: pickle protocol, 0 to 5.
        style: how numpy data is written:

            * ``'portable'``: every array becomes
              ``numpy.ndarray(shape, dtype_str, bytearray)`` and every numpy
              scalar the matching Python scalar: names every numpy version
              (and the official tool under numpy 1.x) reads. Object arrays
              are refused.
            * ``'numpy1'``: exactly what ``pickle.dumps(obj, protocol)``
              gives under numpy 1.x (checked against numpy 1.26.4 bytes):
              arrays are ``numpy.core.multiarray._reconstruct(numpy.ndarray,
              (0,), b'b')`` with the state ``(1, shape, numpy.dtype(...),
              is_fortran, bytes)`` (protocols 0-4; the bytes through
              ``_codecs.encode(text, 'latin1')`` under 0-2) or
              ``numpy.core.numeric._frombuffer(buffer, dtype, shape, order)``
              with an in-band buffer (protocol 5, contiguous arrays); scalars
              are ``numpy.core.multiarray.scalar(dtype, bytes)``; dtypes are
              ``numpy.dtype('f4', False, True)`` plus their state. This is how
              the MultiSports release and the official tools write.

        python2_globals: with ``style='numpy1'`` and a protocol below 3, name
            only the globals a Python 2.7 pickle of numpy 1.x data names
            (``numpy.core.multiarray._reconstruct`` / ``scalar``,
            ``numpy.ndarray``, ``numpy.dtype``, ``_codecs.encode``): an empty
            ``bytes`` (the data of an empty array) is written as
            ``_codecs.encode(u'', 'latin1')`` like any other byte string,
            not as Python 3's ``__builtin__.bytes()``. numpy 1.26 writes the
            latter, so the default keeps its bytes exactly.

    Returns:
        The pickle's bytes.
    """
    if style not in PICKLE_STYLES:
        raise ValueError(f'unknown pickle style {style!r}; use one of {PICKLE_STYLES}')
    buffer = io.BytesIO()
    if style == 'portable':
        _PortablePickler(buffer, protocol=protocol).dump(obj)
    else:
        _Numpy1Pickler(buffer, protocol=protocol, python2_globals=python2_globals).dump(obj)
    return buffer.getvalue()


@contextlib.contextmanager
def atomic_output(path: Union[str, os.PathLike]):
    """Yield an open binary temporary file beside ``path``; rename it to ``path`` on success.

    A partial file never replaces an existing one (on an error the temporary
    file is removed); the folder is created.
    """
    path = os.fspath(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + osp.basename(path), suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def write_file_atomically(data: bytes, path: Union[str, os.PathLike]) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    with atomic_output(path) as f:
        f.write(data)


def dump_pickle(
    obj: Any, path: Union[str, os.PathLike], protocol: int = 4, style: str = 'portable'
) -> None:
    """Write ``obj`` so that numpy 1.x and 2.x can read it; atomic (temp file, rename).

    Args:
        obj: builtin containers, numbers, strings and numpy arrays/scalars.
        path: destination; its folder is created. A partial file never
            replaces an existing one.
        protocol: pickle protocol (4 is readable by Python >= 3.4; the
            MultiSports release uses 2).
        style: ``'portable'`` or ``'numpy1'``, see :func:`dumps_pickle`.
    """
    write_file_atomically(dumps_pickle(obj, protocol=protocol, style=style), path)
