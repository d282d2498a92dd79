"""Reference pickles written by a real numpy 1.x (not the project's code), and their writer.

The files ``numpy1_pickles/numpy1_protocol{0,2,4,5}.pkl`` beside this module are what a plain
``pickle.dump(reference_object(), f, protocol)`` gives under numpy 1.26.4 on
CPython 3.11: the way the MultiSports release, its official evaluation tool
and mmaction2 write their pickles. ``tests/test_utils/test_pickle_io.py``
loads them and checks that ``dump_pickle(..., style='numpy1')`` writes the
same bytes. They were made on 2026-12-02 with::

    python3.11 -m venv /tmp/np1 && /tmp/np1/bin/pip install numpy==1.26.4
    /tmp/np1/bin/python pcca_plugin/testing/numpy1_reference.py

The module imports nothing but numpy, so it runs as a script in that bare
environment (run by its path, it does not import the package).
"""

import os.path as osp
import pickle
import sys

import numpy as np

#: Protocols of the reference files: 0 (text), 2 (the MultiSports release), 4, 5 (buffers).
PROTOCOLS = (0, 2, 4, 5)
#: Where the reference files live: ``numpy1_pickles/`` beside this module.
FOLDER = osp.join(osp.dirname(osp.abspath(__file__)), 'numpy1_pickles')


def reference_path(protocol: int) -> str:
    return osp.join(FOLDER, f'numpy1_protocol{protocol}.pkl')


def reference_object() -> dict:
    """A small MultiSports-like GT dict plus the numpy constructs real files hold.

    Deterministic (no random numbers), so numpy 1 and numpy 2 build equal objects.
    """
    frames = np.arange(1, 5, dtype=np.float32)[:, None]  # (4, 1)
    boxes = np.array([[10.0, 20.0, 50.0, 90.0]], dtype=np.float32) + frames  # (4, 4)
    tube = np.concatenate([frames, boxes], axis=1)  # (4, 5) float32
    return dict(
        labels=['aerobic push up', 'basketball save', 'run'],
        train_videos=[['sport/v_train_c001']],
        test_videos=[['sport/v_test_c001']],
        nframes={'sport/v_train_c001': 6, 'sport/v_test_c001': np.int64(5)},
        resolution={'sport/v_train_c001': (720, 1280), 'sport/v_test_c001': (720, 1280)},
        gttubes={
            'sport/v_train_c001': {2: [tube.copy()]},
            'sport/v_test_c001': {0: [tube[:3].astype(np.float64)], 2: [tube]},
        },
        detections=np.arange(24, dtype=np.float64).reshape(3, 8) / 8.0,  # (3, 8)
        fortran=np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3)),
        strided=np.arange(10, dtype=np.int16)[::3],
        empty=np.zeros((0, 5), dtype=np.float32),
        flags=np.array([True, False]),
        scalars=(np.float32(0.5), np.float64(0.25), np.int32(-3), np.bool_(True)),
        raw=b'\x00\x01latin\xff',
    )


def main() -> None:
    if not np.__version__.startswith('1.'):
        sys.exit(f'run this under numpy 1.x (found {np.__version__}); see the docstring')
    for protocol in PROTOCOLS:
        with open(reference_path(protocol), 'wb') as f:
            pickle.dump(reference_object(), f, protocol=protocol)
        print(reference_path(protocol))


if __name__ == '__main__':
    main()
