"""Helpers for the tests of the submission archive (``P_submission.zip``).

* :func:`member_pickles` and :func:`pickle_protocol_and_globals` open an
  archive's members and list what each pickle's opcodes need: the highest
  protocol of an opcode and the globals it names (``pickletools``, nothing
  is unpickled).
* :func:`archive_summary` describes the unpickled members in JSON terms
  (types, dtypes, shapes, exact values, a checksum). Run as a script by the
  bare numpy 1.x interpreter (:func:`numpy1_archive_summaries`), it opens
  each archive and ``pickle.load``\\ s both members with the default arguments,
  as the 2021 server did, and prints the summaries; the tests compare them
  with :func:`archive_summary` of what this environment (numpy 2) reads.

The module imports the standard library and numpy only, so that it runs as a
script in that bare environment (by its path, with ``-I``: it does not import
the package).
"""

import hashlib
import json
import pickle
import pickletools
import subprocess
import sys
import zipfile
from typing import Dict, List, Tuple

import numpy as np

#: The members of an archive, in the order the summaries list them.
MEMBERS = ('frame_detections.pkl', 'video_detections.pkl')
#: Seconds the numpy 1.x reader may take.
NUMPY1_TIMEOUT_S = 120


def member_pickles(path: str) -> Dict[str, bytes]:
    """``{member name: bytes}`` of every member of the zip ``path``."""
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def pickle_protocol_and_globals(data: bytes) -> Tuple[int, set]:
    """``(highest protocol of an opcode, {'module.name' of every GLOBAL})`` of a pickle.

    A ``STACK_GLOBAL`` (protocol 4) is listed as ``'<STACK_GLOBAL>'``: its name is
    on the stack, not in the opcode.
    """
    highest, names = 0, set()
    for opcode, argument, _ in pickletools.genops(data):
        highest = max(highest, opcode.proto)
        if opcode.name == 'GLOBAL':
            module, name = argument.split(' ', 1)
            names.add(f'{module}.{name}')
        elif opcode.name == 'STACK_GLOBAL':
            names.add('<STACK_GLOBAL>')
    return highest, names


def _array_summary(array) -> dict:
    if not isinstance(array, np.ndarray):
        return {'type': type(array).__name__}
    return {
        'type': 'ndarray',
        'dtype': str(array.dtype),
        'shape': list(array.shape),
        'c_contiguous': bool(array.flags.c_contiguous),
        'sha256': hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest(),
        'values': array.tolist(),
    }


def archive_summary(frame_detections, video_detections) -> dict:
    """The two members in JSON terms: exact values, Python / numpy types, shapes."""
    entries = {}
    for label in sorted(video_detections):
        entries[str(label)] = [
            {
                'entry_type': type(entry).__name__,
                'name_type': type(entry[0]).__name__,
                'name': str(entry[0]),
                'score_type': type(entry[1]).__name__,
                'score': float(entry[1]),
                'tube': _array_summary(entry[2]),
            }
            for entry in video_detections[label]
        ]
    return {
        'frame_detections': _array_summary(frame_detections),
        'video_detections': {
            'type': type(video_detections).__name__,
            'keys': sorted(int(k) for k in video_detections),
            'key_types': sorted({type(k).__name__ for k in video_detections}),
            'value_types': sorted({type(v).__name__ for v in video_detections.values()}),
            'entries': entries,
        },
    }


def _load_as_the_server_did(path: str) -> dict:
    """Both members through a plain ``pickle.load`` with the default arguments."""
    loaded = {}
    with zipfile.ZipFile(path) as archive:
        for member in MEMBERS:
            with archive.open(member) as f:
                loaded[member] = pickle.load(f)
    return archive_summary(*(loaded[member] for member in MEMBERS))


def numpy1_archive_summaries(python: str, paths: List[str]) -> dict:
    """Run this module under ``python`` (numpy 1.x) on ``paths``.

    Returns:
        ``{'numpy': version, 'summaries': [archive_summary of each path]}``.

    Raises:
        RuntimeError: the interpreter failed; the message holds its stderr.
    """
    result = subprocess.run(
        [python, '-I', __file__, *paths], capture_output=True, text=True, timeout=NUMPY1_TIMEOUT_S
    )
    if result.returncode != 0:
        raise RuntimeError(f'{python} could not read {paths}:\n{result.stderr}')
    return json.loads(result.stdout)


def _main(paths: List[str]) -> None:
    summaries = [_load_as_the_server_did(path) for path in paths]
    print(json.dumps({'numpy': np.__version__, 'summaries': summaries}))


if __name__ == '__main__':
    _main(sys.argv[1:])
