"""The ways real tools write MultiSports pickles, as in-process writers for the tests.

:data:`STYLES` maps a style name to a function ``obj -> bytes``:

* ``numpy2-protocol{0,2,4,5}``: a plain ``pickle.dumps(obj, protocol)`` under the
  installed numpy 2 (``numpy._core`` names; ``_codecs.encode`` for bytes under
  protocols 0 and 2; ``_frombuffer`` with an in-band buffer under protocol 5).
* ``numpy1-protocol{0,2,5}``: what numpy 1.x writes (``numpy.core`` names), the
  way of the MultiSports release and the official tools; made by
  ``dump_pickle(style='numpy1')``, whose bytes ``test_pickle_io.py`` checks
  against files written by a real numpy 1.26.4.
* ``python2-protocol2``: what Python 2's ``cPickle.dump(obj, f, 2)`` with
  numpy 1.16 writes, built here by hand (:class:`Python2StylePickler`).
"""

import io
import pickle
from functools import partial
from typing import Callable, Dict

import numpy as np

from pcca_plugin.utils.pickle_io import dumps_pickle


class _Global:
    """A module-level name to write with a GLOBAL opcode (Python 2 numpy's spelling)."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):
        raise TypeError('a name to write, not a function')


class Python2StylePickler(pickle._Pickler):
    """Protocol 2 as Python 2 wrote it: ``str`` is a byte string, numpy 1.16 reductions.

    Python 2 differs from Python 3 protocol 2 in what matters here:

    * a ``str`` (bytes) is written raw with ``SHORT_BINSTRING`` / ``BINSTRING``
      (Python 3 uses ``_codecs.encode`` for bytes); ASCII text is a Python 2
      ``str`` too, other text a ``unicode`` (``BINUNICODE``);
    * numpy's array bytes are such a ``str``: ``_reconstruct(ndarray, (0,), 'b')``
      with the state ``(1, shape, dtype, is_fortran, '<raw bytes>')``; a scalar is
      ``scalar(dtype, '<raw bytes>')``; a dtype is ``dtype('f4', 0, 1)`` (ints,
      not bools) with its state;
    * builtins live in ``__builtin__`` (the pure-Python pickler maps them already).
    """

    dispatch = dict(pickle._Pickler.dispatch)
    _RECONSTRUCT = _Global('numpy.core.multiarray', '_reconstruct')
    _SCALAR = _Global('numpy.core.multiarray', 'scalar')

    def __init__(self, file):
        super().__init__(file, protocol=2)

    def reducer_override(self, obj):
        if isinstance(obj, np.ndarray):
            is_fortran = bool(obj.flags.f_contiguous and not obj.flags.c_contiguous)
            state = (1, obj.shape, obj.dtype, is_fortran, obj.tobytes('A'))
            return self._RECONSTRUCT, (np.ndarray, (0,), b'b'), state
        if isinstance(obj, np.generic):
            return self._SCALAR, (obj.dtype, obj.tobytes())
        if isinstance(obj, np.dtype):
            cls, (kind, _, _), state = obj.__reduce__()
            return cls, (kind, 0, 1), state
        return NotImplemented

    def save_global_name(self, obj: _Global) -> None:
        self.write(pickle.GLOBAL + f'{obj.module}\n{obj.name}\n'.encode('ascii'))
        self.memoize(obj)

    def _write_binstring(self, data: bytes) -> None:
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + len(data).to_bytes(4, 'little') + data)

    def save_byte_string(self, data: bytes) -> None:
        self._write_binstring(data)
        self.memoize(data)

    def save_text(self, text: str) -> None:
        if not text.isascii():
            pickle._Pickler.save_str(self, text)  # a Python 2 ``unicode``
            return
        self._write_binstring(text.encode('ascii'))
        self.memoize(text)

    dispatch[_Global] = save_global_name
    dispatch[bytes] = save_byte_string
    dispatch[str] = save_text


def python2_style_dumps(obj) -> bytes:
    buffer = io.BytesIO()
    Python2StylePickler(buffer).dump(obj)
    return buffer.getvalue()


STYLES: Dict[str, Callable[[object], bytes]] = {
    **{f'numpy2-protocol{p}': partial(pickle.dumps, protocol=p) for p in (0, 2, 4, 5)},
    **{f'numpy1-protocol{p}': partial(dumps_pickle, protocol=p, style='numpy1') for p in (0, 2, 5)},
    'python2-protocol2': python2_style_dumps,
}


def write(obj, path, style: str) -> str:
    """Write ``obj`` to ``path`` in ``style``; returns the path as a string."""
    with open(path, 'wb') as f:
        f.write(STYLES[style](obj))
    return str(path)


def assert_same(expected, actual, where='obj'):
    """Deep equality that also compares types, dtypes and array shapes."""
    assert type(actual) is type(expected), f'{where}: {type(actual)} != {type(expected)}'
    if isinstance(expected, dict):
        assert list(actual) == list(expected), where
        for key in expected:
            assert_same(expected[key], actual[key], f'{where}[{key!r}]')
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), where
        for index, (a, b) in enumerate(zip(expected, actual)):
            assert_same(a, b, f'{where}[{index}]')
    elif isinstance(expected, (np.ndarray, np.generic)):
        assert actual.dtype == expected.dtype and np.shape(actual) == np.shape(expected), where
        np.testing.assert_array_equal(actual, expected, err_msg=where)
    else:
        assert actual == expected, where
