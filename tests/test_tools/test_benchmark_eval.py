"""tools/benchmark_eval.py --quick: the documented table; ours equals the official frameAP."""

import json
import os.path as osp

import numpy as np

from pcca_plugin.evaluation.functional import SERVER2021_FIGURES
from pcca_plugin.testing import REPO_ROOT, run_tool


def test_quick_benchmark_prints_the_documented_table(tmp_path):
    result = run_tool('benchmark_eval.py', '--quick', '--out', str(tmp_path), cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith('| command'))
    columns = [cell.strip() for cell in lines[header].strip('|').split('|')]
    # The columns docs/evaluation.md shows.
    assert columns == ['command', 'CLI wall s', 'in-process s', 'peak RSS MiB']
    rows = {}
    for line in lines[header + 2 :]:
        if not line.startswith('|'):
            break
        cells = [cell.strip() for cell in line.strip('|').split('|')]
        rows[cells[0]] = [float('nan') if value == '-' else float(value) for value in cells[1:]]
    server = rows.pop('eval_multisports.py server2021 (2021 server)')
    assert list(rows) == [
        'eval_multisports.py frameAP',
        'eval_multisports.py link',
        'frameAP + link (sum; RSS: max)',
        'official frameAP (mmaction2 1.2.0 port)',
    ]
    assert server[0] > 0 and server[2] > 10 and np.isnan(server[1])  # no in-process time
    for name, (wall, in_process, peak) in rows.items():
        assert 0 < in_process < wall, name  # the process does more than the evaluation
        assert peak > 10, name  # MiB: at least an interpreter with numpy
    frame, link, both, _ = rows.values()
    assert abs(both[0] - (frame[0] + link[0])) <= 0.011  # sums of figures printed to 0.01
    assert both[2] == max(frame[2], link[2])
    with open(tmp_path / 'report.json') as f:
        report = json.load(f)
    assert report['frame_detections'] == 3 * 750 * 8 * 3  # videos x frames x persons x classes
    assert report['frame_mAP']['identical'] is True  # ours equals the official frameAP
    assert report['frame_mAP']['ours'] > 0
    assert osp.getsize(tmp_path / 'video_detections.pkl') > 0  # link wrote its tubes
    assert list(report['server2021']) == list(SERVER2021_FIGURES)
    assert report['server2021']['F@0.5'] > 0


def test_bad_arguments_are_one_line(tmp_path):
    result = run_tool('benchmark_eval.py', '--videos', '0', '--out', str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        'benchmark_eval.py: error: --videos must be at least 1 (a case needs a video), got 0 '
        '(rerun with --debug for the traceback)'
    ]
