"""tools/ensemble.py as a user runs it: writes the averaged file, one-line errors.

The ensemble itself is tested in process in
``tests/test_evaluation/test_functional/test_ensemble.py``.
"""

import numpy as np

from pcca_plugin.testing import run_tool
from pcca_plugin.testing.evaluation import make_ensemble_dets, write_ensemble_inputs
from pcca_plugin.utils.pickle_io import load_pickle

TOOL = 'ensemble.py'


def test_writes_the_weighted_mean(tmp_path):
    paths, gt_path = write_ensemble_inputs(str(tmp_path))
    out = str(tmp_path / 'ensemble.pkl')
    run = run_tool(TOOL, *paths, '-o', out, '--gt', gt_path, '--weights', '1', '3')
    assert run.returncode == 0, run.stderr
    merged = load_pickle(out)
    assert run.stdout.strip() == f'2 files, {merged.shape[0]} rows -> {out}'
    expected = (make_ensemble_dets(1)[:, 3] + 3 * make_ensemble_dets(2)[:, 3]) / 4
    np.testing.assert_allclose(merged[:, 3], expected)


def test_bad_input_is_one_line(tmp_path):
    paths, gt_path = write_ensemble_inputs(str(tmp_path))
    out = str(tmp_path / 'ensemble.pkl')
    with open(paths[1], 'w') as f:
        f.write('not a pickle\n')
    cases = [
        ([*paths, '-o', out], [paths[1], 'not a readable pickle']),
        ([paths[0], paths[0], '-o', out, '--weights', '1'], ['--weights has 1 values for 2']),
        ([paths[0], str(tmp_path / 'x.pkl'), '-o', out], ['x.pkl: no such result file']),
    ]
    for arguments, expected in cases:
        run = run_tool(TOOL, *arguments)
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 1 and len(lines) == 1, run.stderr
        assert lines[0].startswith(f'{TOOL}: error: ')
        assert all(text in lines[0] for text in expected), lines[0]
    debug = run_tool(TOOL, *paths, '-o', out, '--debug')
    assert debug.returncode != 0 and 'Traceback (most recent call last)' in debug.stderr
    assert not (tmp_path / 'ensemble.pkl').exists()
