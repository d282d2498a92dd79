"""Malicious pickles for the security tests: each creates a marker file when plain pickle loads it.

The tests load each payload with the project's loader (it must refuse, and the
marker must not appear) and, as a control, with plain ``pickle`` in a child
process (the marker must appear: the payload is live). This module imports
nothing heavy, so the child process can import the classes it names.
"""

import codecs
import io
import os
import pickle
import subprocess
import sys
import time
from typing import Dict, Sequence, Tuple, Union

import numpy as np

#: Seconds the control waits for a marker written by a process a payload started.
MARKER_WAIT_S = 10.0


class Name:
    """A global written with a GLOBAL opcode, as an attacker writes it (any module, name)."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle wants the function of a reduction to be callable
        raise TypeError('a name to write, not a function')


class Call:
    """Pickles as ``function(*args)``; ``function`` may itself be a :class:`Call` or a Name."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __call__(self, *args):
        raise TypeError('a call to write, not a function')

    def __reduce__(self):
        return self.function, self.args


class PayloadPickler(pickle._Pickler):
    """The pure-Python pickler, plus :class:`Name` written as a raw GLOBAL."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_name(self, obj: Name) -> None:
        self.write(pickle.GLOBAL + f'{obj.module}\n{obj.name}\n'.encode())
        self.memoize(obj)

    dispatch[Name] = save_name


def payload_bytes(obj, protocol: int = 2) -> bytes:
    buffer = io.BytesIO()
    PayloadPickler(buffer, protocol=protocol).dump(obj)
    return buffer.getvalue()


def touch_marker(path: str) -> None:
    """A function an attacker's ``__reduce__`` would call."""
    open(path, 'w').close()


class ArbitraryClass:
    """An arbitrary class: unpickling it runs its ``__setstate__``."""

    def __init__(self, marker: str):
        self.marker = marker

    def __setstate__(self, state):
        touch_marker(state['marker'])


class ReducesToAFunction:
    """An object whose ``__reduce__`` calls a function of this module."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return touch_marker, (self.marker,)


def _first(computed, then):
    """A list whose first item is ``computed``: its global is the first the pickle names."""
    return [computed, then]


def pickle_payloads(marker: str) -> Dict[str, Tuple[bytes, str]]:
    """name -> (pickle bytes that create ``marker`` when loaded, the global refused first)."""
    code = f"open({marker!r}, 'w').close()"
    rot13 = codecs.encode(code, 'rot13')
    shell = f'touch {marker}'
    decoded = Call(codecs.decode, rot13, 'rot13')
    looked_up = Call(codecs.lookup, 'rot13')
    via_lookup = Call(
        Call(getattr, Call(Call(getattr, looked_up, 'decode'), rot13), '__getitem__'), 0
    )
    encoded = Call(codecs.encode, rot13, 'rot13')
    return {
        'os.system': (pickle.dumps(Call(os.system, shell), protocol=2), 'posix.system'),
        'os.system, protocol 0 by hand': (
            b'cos\nsystem\n(S' + repr(shell).encode() + b'\ntR.',
            'os.system',
        ),
        'builtins.eval': (pickle.dumps(Call(eval, code), protocol=4), 'builtins.eval'),
        'builtins.exec': (pickle.dumps(Call(exec, code), protocol=2), 'exec'),
        'Python 2 __builtin__.eval': (
            payload_bytes(Call(Name('__builtin__', 'eval'), code)),
            '__builtin__.eval',
        ),
        'subprocess.run': (
            pickle.dumps(Call(subprocess.run, ['touch', marker]), protocol=2),
            'subprocess.run',
        ),
        'subprocess.Popen': (
            pickle.dumps(Call(subprocess.Popen, ['touch', marker]), protocol=4),
            'subprocess.Popen',
        ),
        'getattr chain to os.system': (
            pickle.dumps(Call(Call(getattr, Call(__import__, 'os'), 'system'), shell), protocol=2),
            'getattr',
        ),
        'getattr on an allowed class': (
            pickle.dumps(Call(Call(getattr, np.ndarray, 'tofile'), np.zeros(1), marker), 2),
            'getattr',
        ),
        'dotted name through an allowed class': (
            payload_bytes(Call(Name('numpy', 'ndarray.tofile'), np.zeros(1), marker), protocol=4),
            'numpy.ndarray.tofile',
        ),
        'arbitrary class': (pickle.dumps(ArbitraryClass(marker), protocol=2), 'ArbitraryClass'),
        '__reduce__ calling a function': (
            pickle.dumps(ReducesToAFunction(marker), protocol=2),
            'touch_marker',
        ),
        'copyreg._reconstructor': (
            pickle.dumps(ArbitraryClass(marker), protocol=0),
            'copy_reg._reconstructor',
        ),
        'numpy runstring': (
            payload_bytes(Call(Name('numpy.testing._private.utils', 'runstring'), code, {})),
            'numpy.testing._private.utils.runstring',
        ),
        '_codecs.decode': (
            pickle.dumps(_first(decoded, Call(eval, decoded)), protocol=2),
            '_codecs.decode',
        ),
        '_codecs.lookup': (
            pickle.dumps(_first(looked_up, Call(eval, via_lookup)), protocol=2),
            '_codecs.lookup',
        ),
        '_codecs.encode with rot13': (
            pickle.dumps(_first(encoded, Call(eval, encoded)), protocol=2),
            "_codecs.encode(str, 'rot13'",
        ),
    }


def run_unsafely(
    path: str,
    markers: Union[str, Sequence[str]],
    load: str = 'pickle.loads(open(path, "rb").read())',
) -> str:
    """Run the statement ``load`` (plain pickle by default) on ``path`` in a child process.

    The child imports the classes a payload names from the installed package
    (this module is ``pcca_plugin.testing.malicious_pickles``). Waits up to
    :data:`MARKER_WAIT_S` for every marker (a payload may start a process that
    writes it). Returns the child's stderr.
    """
    markers = [markers] if isinstance(markers, str) else list(markers)
    code = f'import pickle, sys; path = sys.argv[1]; {load}'
    result = subprocess.run(
        [sys.executable, '-c', code, path], capture_output=True, text=True, timeout=300
    )
    deadline = time.monotonic() + MARKER_WAIT_S
    while not all(map(os.path.exists, markers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return result.stderr
