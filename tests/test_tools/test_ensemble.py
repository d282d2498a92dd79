"""tools/ensemble.py as a user runs it: writes the averaged file, one-line errors.

The ensemble itself is tested in process in
``tests/test_evaluation/test_functional/test_ensemble.py``.
"""

import numpy as np

from pcca_plugin.evaluation.functional import ARCHIVE_MEMBERS, read_submission
from pcca_plugin.testing import run_tool
from pcca_plugin.testing.archive import member_pickles, pickle_protocol_and_globals
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


def test_out_prefix_and_zip_write_the_submission_archive(tmp_path):
    paths, gt_path = write_ensemble_inputs(str(tmp_path))
    prefix = str(tmp_path / 'sub' / 'ensemble')
    run = run_tool(TOOL, *paths, '--out-prefix', prefix, '--gt', gt_path, '--zip')
    assert run.returncode == 0, run.stderr
    archive = prefix + '_submission.zip'
    assert run.stdout.strip().endswith(f'{prefix}_video_detections.pkl, {archive}')
    members = member_pickles(archive)
    assert list(members) == list(ARCHIVE_MEMBERS)
    assert all(pickle_protocol_and_globals(data)[0] <= 2 for data in members.values())
    submission = read_submission(archive)
    np.testing.assert_array_equal(
        submission.frame_detections, load_pickle(prefix + '_frame_detections.pkl')
    )
    assert sorted(submission.video_detections) == [0, 1, 2]  # every label of the GT
    run = run_tool(TOOL, *paths, '-o', str(tmp_path / 'e.pkl'), '--zip')
    assert run.returncode == 2 and '--zip archives a submission: give --out-prefix' in run.stderr


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
