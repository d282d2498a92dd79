"""load_pickle reads what real tools write and refuses what can run code; dump_pickle's styles.

Real material: ``numpy1_reference/numpy1_protocol*.pkl`` were written by a real
numpy 1.26.4 (``make_reference_pickles.py``), not by this project's code.
Malicious payloads: each is live (plain ``pickle.loads`` runs it and a marker file
appears), and ``load_pickle`` refuses it, names the file, and no marker appears.
"""

import io
import os
import pickle
import pickletools

import numpy as np
import pytest

from pcca_plugin.testing.malicious_pickles import pickle_payloads, run_unsafely
from pcca_plugin.testing.numpy1_reference import PROTOCOLS, reference_object, reference_path
from pcca_plugin.testing.pickle_styles import STYLES, assert_same, write
from pcca_plugin.utils.pickle_io import (
    LEAN_TEXT_MIN_BYTES,
    PICKLE_STYLES,
    UnsafePickleError,
    dump_pickle,
    dumps_pickle,
    load_pickle,
    unpickle_text_arrays,
)


def expected_after(style: str) -> dict:
    """What loading ``reference_object()`` written in ``style`` gives."""
    obj = reference_object()
    if style.startswith('python2'):
        # A Python 2 str is bytes; encoding='latin1' reads it as text with the same code points.
        obj['raw'] = obj['raw'].decode('latin1')
    return obj


class _Opened(pickle.Unpickler):
    """Records the globals a (trusted, test-written) pickle names."""

    def __init__(self, data: bytes):
        super().__init__(io.BytesIO(data), encoding='latin1')
        self.names = set()

    def find_class(self, module, name):
        self.names.add(f'{module}.{name}')
        return super().find_class(module, name)


def named_globals(data: bytes) -> set:
    opened = _Opened(data)
    opened.load()
    return opened.names


def opcodes(data: bytes) -> set:
    return {op.name for op, _, _ in pickletools.genops(data)}


# --- real numpy 1.x files ---------------------------------------------------------------


@pytest.mark.parametrize('protocol', PROTOCOLS)
def test_real_numpy1_pickles_load(protocol):
    path = reference_path(protocol)
    assert_same(reference_object(), load_pickle(path))
    names = named_globals(open(path, 'rb').read())
    assert 'numpy.core.multiarray.scalar' in names
    reconstructor = (
        'numpy.core.numeric._frombuffer'
        if protocol == 5
        else ('numpy.core.multiarray._reconstruct')
    )
    assert reconstructor in names
    assert ('_codecs.encode' in names) == (protocol < 3)


@pytest.mark.parametrize('protocol', PROTOCOLS)
def test_numpy1_style_writes_the_bytes_numpy1_writes(protocol, tmp_path):
    """The numpy1 writer gives numpy 1.26.4's exact opcode stream, byte for byte."""
    reference = open(reference_path(protocol), 'rb').read()
    assert dumps_pickle(reference_object(), protocol=protocol, style='numpy1') == reference
    dump_pickle(reference_object(), tmp_path / 'out.pkl', protocol=protocol, style='numpy1')
    assert (tmp_path / 'out.pkl').read_bytes() == reference
    assert b'numpy._core' not in reference


def test_unknown_style_is_refused_and_nothing_is_written(tmp_path):
    with pytest.raises(ValueError, match=r"unknown pickle style 'numpy3'.*'portable', 'numpy1'"):
        dump_pickle({'a': 1}, tmp_path / 'x.pkl', style='numpy3')
    assert not os.listdir(tmp_path)
    assert PICKLE_STYLES == ('portable', 'numpy1')


# --- every writer style ---------------------------------------------------------------------

#: Globals / opcodes each style must contain, so that the round trip below tests them.
STYLE_MARKS = {
    'numpy2-protocol0': {'numpy._core.multiarray._reconstruct', '_codecs.encode'},
    'numpy2-protocol2': {'numpy._core.multiarray._reconstruct', '_codecs.encode'},
    'numpy2-protocol4': {'numpy._core.multiarray._reconstruct', 'numpy._core.multiarray.scalar'},
    'numpy2-protocol5': {'numpy._core.numeric._frombuffer', 'numpy._core.multiarray.scalar'},
    'numpy1-protocol0': {'numpy.core.multiarray._reconstruct', '_codecs.encode'},
    'numpy1-protocol2': {'numpy.core.multiarray._reconstruct', 'numpy.core.multiarray.scalar'},
    'numpy1-protocol5': {'numpy.core.numeric._frombuffer', 'numpy.core.multiarray.scalar'},
    'python2-protocol2': {'numpy.core.multiarray._reconstruct', 'numpy.dtype'},
}


@pytest.mark.parametrize('style', sorted(STYLES))
def test_every_writer_style_round_trips(style, tmp_path):
    path = write(reference_object(), tmp_path / 'obj.pkl', style)
    data = open(path, 'rb').read()
    assert STYLE_MARKS[style] <= named_globals(data), 'the style does not write what it claims'
    if style.startswith('numpy2'):
        assert data == pickle.dumps(reference_object(), protocol=int(style[-1]))
    assert_same(expected_after(style), load_pickle(path))


def test_python2_style_uses_byte_strings_and_builtin_names(tmp_path):
    data = STYLES['python2-protocol2']({'labels': ['run'], 'ids': {1, 2}, 'a': np.arange(3)})
    assert {'SHORT_BINSTRING'} <= opcodes(data) and 'BINUNICODE' not in opcodes(data)
    assert b'__builtin__\nset' in data and b'_codecs' not in data
    big = STYLES['python2-protocol2']({'a': np.arange(100, dtype=np.float64)})  # 800-byte string
    assert 'BINSTRING' in opcodes(big)
    for payload, expected in ((data, np.arange(3)), (big, np.arange(100.0))):
        (tmp_path / 'py2.pkl').write_bytes(payload)
        np.testing.assert_array_equal(load_pickle(tmp_path / 'py2.pkl')['a'], expected)
    assert load_pickle(tmp_path / 'py2.pkl')['a'].dtype == np.float64


def test_numpy_dtype_classes_load_and_an_unknown_one_names_the_file(tmp_path):
    path = tmp_path / 'dtype_class.pkl'
    path.write_bytes(pickle.dumps([np.dtypes.Float32DType, np.dtype('int16')], protocol=2))
    assert load_pickle(path) == [np.dtypes.Float32DType, np.dtype('int16')]
    for name in ('NoSuchDType', '_add_dtype_helper', '__builtins__', 'Float32DType.mro'):
        path.write_bytes(b'\x80\x02cnumpy.dtypes\n' + name.encode() + b'\nq\x00.')
        with pytest.raises(UnsafePickleError) as info:
            load_pickle(path)
        message = str(info.value)
        assert str(path) in message and f'numpy.dtypes.{name}' in message
        assert 'not a dtype class' in message or 'refusing' in message


def test_truncated_file_is_named(tmp_path):
    path = tmp_path / 'cut.pkl'
    path.write_bytes(pickle.dumps(reference_object(), protocol=2)[:-40])
    with pytest.raises(pickle.UnpicklingError, match=f'{path}: not a readable pickle'):
        load_pickle(path)


# --- malicious payloads ---------------------------------------------------------------------

PAYLOAD_NAMES = sorted(pickle_payloads('MARKER'))


@pytest.mark.parametrize('name', PAYLOAD_NAMES)
def test_malicious_pickle_is_refused_with_the_file_named_and_nothing_runs(name, tmp_path):
    marker = str(tmp_path / 'ran.marker')
    data, refused = pickle_payloads(marker)[name]
    path = tmp_path / 'evil.pkl'
    path.write_bytes(data)
    with pytest.raises(UnsafePickleError) as info:
        load_pickle(path)
    message = str(info.value)
    assert message.startswith(f'{path}: refusing') and refused in message, message
    assert not os.path.exists(marker), 'the payload ran'
    # Control: the payload is live; plain pickle (in a child process) runs it.
    stderr = run_unsafely(str(path), marker)
    assert os.path.exists(marker), f'the payload is not live: {stderr[-800:]}'


@pytest.mark.parametrize('name', PAYLOAD_NAMES)
def test_the_protocol2_array_reader_refuses_what_load_pickle_refuses(name, tmp_path):
    """The chunked reader of large protocol-2 arrays checks every global the same way."""
    marker = str(tmp_path / 'ran.marker')
    data, refused = pickle_payloads(marker)[name]
    with pytest.raises(UnsafePickleError) as info:
        unpickle_text_arrays(io.BytesIO(data), 'evil.pkl')
    assert str(info.value).startswith('evil.pkl: refusing') and refused in str(info.value)
    assert not os.path.exists(marker), 'the payload ran'


def test_the_protocol2_array_reader_gives_what_pickle_gives():
    """Large arrays (over LEAN_TEXT_MIN_BYTES of text) decoded in chunks into their own buffer."""
    big = np.random.default_rng(0).random((LEAN_TEXT_MIN_BYTES // 8, 8))  # 8 MiB of float64
    obj = dict(reference_object(), big=big, fortran_big=np.asfortranarray(big[:, :5]))
    obj['again'] = obj['big']  # a memo reference to the same array
    data = dumps_pickle(obj, protocol=2, style='numpy1')
    loaded = unpickle_text_arrays(io.BytesIO(data), 'big.pkl')
    assert_same(loaded, pickle.loads(data))
    assert loaded['again'] is loaded['big'] and loaded['big'].flags.writeable
    assert loaded['fortran_big'].flags.f_contiguous
