"""``tools/benchmark_heads.py --quick`` runs as a user runs it and prints the documented table."""

import json

from pcca_plugin.testing import repo_path, run_tool

#: Seconds the quick benchmark may take (imports included) before the test fails.
QUICK_TIMEOUT = 240
HEADS = ('pcca', 'pcca-4/clip', 'pcca-standard', 'pcca-extractor', 'acrn', 'linear')
QUICK_PERSONS = (2, 4)
#: The section of docs/model.md that shows the benchmark's table.
DOC = repo_path('docs', 'model.md')


def table_header(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith('| head | N |'))


def test_quick_benchmark_prints_the_documented_columns(tmp_path):
    out = tmp_path / 'bench.md'
    result = run_tool(
        'benchmark_heads.py', '--quick', '--out', str(out), cwd=tmp_path, timeout=QUICK_TIMEOUT
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    text = out.read_text()
    assert text in result.stdout  # the table printed is the table written
    # the same columns as the table in docs/model.md
    header = table_header(text)
    with open(DOC) as f:
        assert header == table_header(f.read())
    columns = [cell.strip() for cell in header.strip('|').split('|')]
    for column in (
        'fwd per person (ms)',
        'fwd+bwd per person (ms)',
        'saved MiB/person (head)',
        'GMACs/person (analytic)',
        'GMACs/person (counted)',
    ):
        assert column in columns
    rows = [line for line in text.splitlines() if line.startswith('| ') and line != header]
    cells = [[c.strip() for c in line.strip('|').split('|')] for line in rows]
    table = [c for c in cells if len(c) == len(columns)]
    assert [(c[0], int(c[1])) for c in table] == [(h, n) for h in HEADS for n in QUICK_PERSONS]
    for row in table:
        [float(value) for value in row[2:]]  # every figure is a number
    assert 'bar <= 0.01' in text and 'bar <= 0.2' in text

    summary = json.loads(out.with_suffix('.json').read_text())
    by = {(r['head'], r['persons']): r for r in summary['rows']}
    for n in QUICK_PERSONS:
        for kind in ('pcca', 'pcca-standard'):
            row = by[(kind, n)]
            # the analytic count is exact for the PCCA head: the counter sees the same products
            assert abs(row['gmacs_per_person_analytic'] - row['gmacs_per_person_counted']) < 1e-12
            inference = row['inference_gmacs_per_person_analytic']
            assert abs(inference - row['inference_gmacs_per_person_counted']) < 1e-12
        # inference (cached fold) never costs more than training; with many persons on
        # a small map both project the map once per clip and cost the same
        factored = by[('pcca', n)]
        assert (
            factored['inference_gmacs_per_person_counted'] <= factored['gmacs_per_person_counted']
        )
        assert factored['fold_gmacs'] > 0 == by[('pcca-standard', n)]['fold_gmacs']
        assert (
            by[('pcca', n)]['gmacs_per_person_counted']
            < by[('pcca-standard', n)]['gmacs_per_person_counted']
        )
        assert (
            0
            < by[('pcca', n)]['head_saved_mib_per_person']
            < (by[('pcca-standard', n)]['head_saved_mib_per_person'])
        )
