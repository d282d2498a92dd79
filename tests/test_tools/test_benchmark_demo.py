"""``tools/demo/benchmark_demo.py --quick`` runs, and its table has the columns the docs show."""

import json

import pytest

from pcca_plugin.testing import repo_path, run_tool

DOC = repo_path('docs', 'inference.md')
#: The heading of the benchmark's section in the docs.
DOC_SECTION = '### Throughput'
TIMEOUT = 300


def markdown_rows(lines):
    """Cells of consecutive Markdown table lines (the separator line left out)."""
    rows = []
    for line in lines:
        if not line.startswith('|'):
            break
        cells = [cell.strip() for cell in line.strip().strip('|').split('|')]
        if not all(set(cell) <= set('-:') for cell in cells):
            rows.append(cells)
    return rows


def documented_table():
    """Header and rows of the first table after :data:`DOC_SECTION` in ``docs/inference.md``."""
    with open(DOC, encoding='utf-8') as f:
        lines = f.read().split(DOC_SECTION, 1)[1].splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith('|'))
    rows = markdown_rows(lines[first:])
    return rows[0], rows[1:]


@pytest.fixture(scope='module')
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('bench') / 'bench.json'
    result = run_tool('demo/benchmark_demo.py', '--quick', '--json', out, timeout=TIMEOUT)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    with open(out, encoding='utf-8') as f:
        return result.stdout, json.load(f)


def test_quick_table_has_the_documented_columns(quick_run):
    stdout, _ = quick_run
    lines = stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith('| config'))
    printed = markdown_rows(lines[first:])
    doc_header, doc_rows = documented_table()
    assert printed[0] == doc_header
    assert doc_rows and all(len(row) == len(doc_header) for row in doc_rows)
    assert len(printed) == 2  # header + the one quick config
    row = dict(zip(printed[0], printed[1]))
    assert row['config'] == 'pcca_slowfast-tiny_1xb8-8x1x1-5e_toy-sports-rgb'
    assert row['model input'] == '96x192' and row['frames'] == '8'
    # Scoring is part of the end-to-end time, so its rate is at least the end-to-end rate.
    assert 0 < float(row['fps (end to end)']) <= float(row['fps (scoring only)'])


def test_quick_figures_name_the_machine_and_date(quick_run):
    stdout, figures = quick_run
    assert figures['threads'] == 1 and figures['video_size'] == [96, 192]
    assert figures['cores'] >= 1 and figures['date'] in stdout
    assert f'{figures["cores"]} CPU cores' in stdout and 'load average' in stdout
    (row,) = figures['rows']
    assert row['frames'] == 8 and row['seconds'] > 0 and row['tubes'] >= 1
    # fps is frames over the unrounded seconds; 'seconds' is printed to 0.01 s, fps to 0.001.
    half_step = 0.005
    slowest = row['frames'] / (row['seconds'] + half_step)
    fastest = row['frames'] / max(row['seconds'] - half_step, 1e-9)
    assert slowest - 0.001 <= row['fps'] <= fastest + 0.001


def test_bad_video_size_and_config_are_named():
    result = run_tool('demo/benchmark_demo.py', '--video-size', '96by192')
    assert result.returncode != 0
    assert "--video-size '96by192': expected HxW" in result.stderr
    result = run_tool('demo/benchmark_demo.py', '--quick', '--configs', 'configs/nope.py')
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    assert 'benchmark_demo.py: error: --configs configs/nope.py: no such config' in result.stderr
