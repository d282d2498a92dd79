"""tools/eval_multisports.py as a user runs it: the official command shape, one-line errors.

The tasks themselves are tested in process in ``tests/test_evaluation/test_tasks.py``; the
start-up time and imports in ``tests/test_evaluation/test_light_imports.py``.
"""

import json

import numpy as np
import pytest

from pcca_plugin.evaluation.functional import frame_ap
from pcca_plugin.testing import run_tool
from pcca_plugin.testing.evaluation import make_case
from pcca_plugin.utils.pickle_io import dump_pickle, dumps_pickle

TOOL = 'eval_multisports.py'


@pytest.fixture(scope='module')
def case():
    return make_case(11)


@pytest.fixture
def files(case, tmp_path):
    gt, dets = case
    paths = dict(gt=str(tmp_path / 'gt.pkl'), frame=str(tmp_path / 'frame_detections.pkl'))
    dump_pickle(gt, paths['gt'])
    dump_pickle(dets, paths['frame'])
    return paths


def test_frame_ap_prints_the_official_table_and_writes_json(case, files, tmp_path):
    gt, dets = case
    out = str(tmp_path / 'frame.json')
    run = run_tool(TOOL, 'frameAP', files['gt'], files['frame'], '-t', '0.5', '--json', out)
    assert run.returncode == 0, run.stderr
    assert 'frameAP_0.5' in run.stdout
    report = json.load(open(out))
    expected = frame_ap(gt, dets, 0.5)
    assert report['frameAP']['mAP'] == expected.mean_ap
    assert report['frameAP']['per_class'] == expected.per_class
    assert report['task'] == 'frameAP' and report['seconds'] > 0


def test_link_requires_output(files):
    run = run_tool(TOOL, 'link', files['gt'], files['frame'])
    assert run.returncode == 2 and 'link needs -o VIDEO_DETS.pkl' in run.stderr


def _rows(dets):
    return dets.tolist()


def _with(dets, row, column, value):
    dets = dets.copy()
    dets[row, column] = value
    return dets


#: (name, which file is bad, how to write it, what the one line must say).
BAD_INPUTS = [
    ('empty', 'frame', lambda gt, dets: b'', ['frame_detections.pkl', 'not a readable pickle']),
    (
        'truncated',
        'frame',
        lambda gt, dets: dumps_pickle(dets)[:1000],
        ['frame_detections.pkl', 'truncated or corrupted', 'Re-create it'],
    ),
    ('text', 'gt', lambda gt, dets: b'labels: run, jump\n', ['gt.pkl', 'not a readable pickle']),
    (
        'rows',
        'frame',
        lambda gt, dets: dumps_pickle(_rows(dets)),
        ['frame_detections.pkl', '(M, 8) numpy array', 'found list', 'numpy.asarray'],
    ),
    (
        'nan',
        'frame',
        lambda gt, dets: dumps_pickle(_with(dets, 3, 5, np.nan)),
        ['frame_detections.pkl', 'row 3 holds NaN', 'must be finite'],
    ),
    (
        'label',
        'frame',
        lambda gt, dets: dumps_pickle(_with(dets, 2, 2, 42)),
        ['frame_detections.pkl', 'row 2: label 42', '[0, 7)', "'labels' from 0"],
    ),
    (
        'video',
        'frame',
        lambda gt, dets: dumps_pickle(_with(dets, 0, 0, 99)),
        ['frame_detections.pkl', 'row 0: video index 99', "'test_videos'[0] from 0"],
    ),
    (
        'frame',
        'frame',
        lambda gt, dets: dumps_pickle(_with(dets, 1, 1, 9999)),
        ['frame_detections.pkl', 'row 1: frame 9999', 'nframes', 'count from 1'],
    ),
    (
        'no-gttubes',
        'gt',
        lambda gt, dets: dumps_pickle({k: v for k, v in gt.items() if k != 'gttubes'}),
        ['gt.pkl', "missing the keys ['gttubes']", 'add the keys'],
    ),
    (
        'dets-as-gt',
        'gt',
        lambda gt, dets: dumps_pickle(dets),
        ['gt.pkl', 'a MultiSports GT file holds a dict, found ndarray'],
    ),
]


@pytest.mark.parametrize(
    'which, write, expected', [bad[1:] for bad in BAD_INPUTS], ids=[bad[0] for bad in BAD_INPUTS]
)
def test_bad_input_is_one_line_naming_file_field_and_fix(case, files, which, write, expected):
    gt, dets = case
    with open(files[which], 'wb') as f:
        f.write(write(gt, dets))
    run = run_tool(TOOL, 'frameAP', files['gt'], files['frame'], '--no-progress')
    assert run.returncode == 1, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in run.stderr, run.stderr
    assert lines[0].startswith(f'{TOOL}: error: ') and lines[0].endswith('for the traceback)')
    for text in expected:
        assert text in lines[0], (text, lines[0])
    debug = run_tool(TOOL, 'frameAP', files['gt'], files['frame'], '--no-progress', '--debug')
    assert debug.returncode != 0 and 'Traceback (most recent call last)' in debug.stderr


def test_missing_file_and_wrong_kind_of_detections_are_one_line(case, files, tmp_path):
    gt, dets = case
    run = run_tool(TOOL, 'frameAP', files['gt'], str(tmp_path / 'nothere.pkl'))
    assert run.returncode == 1 and 'nothere.pkl: no such file' in run.stderr
    run = run_tool(TOOL, 'videoAP', files['gt'], files['frame'])  # frame rows, not tubes
    assert run.returncode == 1 and len(run.stderr.strip().splitlines()) == 1
    assert 'frame_detections.pkl: video detections are a dict' in run.stderr
