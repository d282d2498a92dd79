"""The demo's claim checks (pcca_plugin.demo.claims): PASS / FAIL lines, a failing claim raises.

The per-seed results are constructed (:mod:`pcca_plugin.testing.demo`); everything
after them is the demo's own code: the summary over seeds and the claim checks.
"""

import json
import os

import pytest

from pcca_plugin.demo import claims as demo_claims
from pcca_plugin.demo.report import write_summary
from pcca_plugin.demo.settings import MODEL_ROWS, TABLE_COLUMNS, ClaimNotReproduced, DemoError
from pcca_plugin.testing.demo import PASSING_SEED, failing, write_seed

CLAIM_NAMES = [name for name, _ in demo_claims.CLAIMS]


def summary_claims(work_dir, seeds_figures, quick=False):
    reports = {seed: write_seed(work_dir, seed, figures) for seed, figures in seeds_figures.items()}
    outputs = write_summary(str(work_dir), reports, MODEL_ROWS, TABLE_COLUMNS, quick=quick)
    with open(outputs['results_json']) as f:
        claims = json.load(f)['claims']
    with open(outputs['results_md']) as f:
        return outputs, claims, f.read()


def test_every_claim_passes_on_seeds_that_meet_it(tmp_path):
    outputs, claims, text = summary_claims(tmp_path, {0: PASSING_SEED, 1: PASSING_SEED})
    assert [c['name'] for c in claims] == CLAIM_NAMES
    assert all(c['passed'] for c in claims)
    for _, statement in demo_claims.CLAIMS:
        assert f'- PASS: {statement} (seed 0 ' in text
    assert 'FAIL' not in text
    assert '- PASS: PCCA beats linear on F@0.5 on every seed (seed 0 +20.00; seed 1 +20.00)' in text
    assert 'context +32.50 vs motion +5.00' in text
    assert os.path.getsize(outputs['training_curves_png']) > 0
    demo_claims.check_paper_claims(outputs['results_json'], enforce=True)  # does not raise


@pytest.mark.parametrize('claim', CLAIM_NAMES)
def test_a_claim_failing_on_one_seed_fails(tmp_path, claim):
    _, claims, text = summary_claims(tmp_path, {0: PASSING_SEED, 3: failing(claim)})
    verdicts = {c['name']: c['passed'] for c in claims}
    assert verdicts == {name: name != claim for name in CLAIM_NAMES}
    failed = next(c for c in claims if c['name'] == claim)
    assert failed['seeds']['0']['passed'] and not failed['seeds']['3']['passed']
    statement = dict(demo_claims.CLAIMS)[claim]
    assert f'- FAIL: {statement} (seed 0 ' in text
    line = next(line for line in text.splitlines() if line.startswith('- FAIL'))
    assert line.endswith('(fails))') and 'seed 3' in line


def test_a_missing_figure_fails_its_claim():
    checks = {
        '0': dict(
            pcca_minus_linear=float('nan'),
            pcca_minus_linear_motion=1.0,
            pcca_minus_linear_context=2.0,
            phase2_tail_gain=1.0,
        )
    }
    claims = {c['name']: c['passed'] for c in demo_claims.check_claims(checks, [0])}
    assert claims == dict(
        pcca_beats_linear=False, gain_larger_on_context=True, phase2_raises_tail=True
    )


def test_a_failed_claim_raises_with_a_clear_message_when_enforced(tmp_path, capsys):
    outputs, _, _ = summary_claims(tmp_path, {0: PASSING_SEED, 1: failing('phase2_raises_tail')})
    with pytest.raises(ClaimNotReproduced) as error:
        demo_claims.check_paper_claims(outputs['results_json'], enforce=True)
    message = str(error.value)
    assert "1 of the paper's 3 claims FAILED" in message
    assert 'FAIL: phase 2 raises the mean AP of the tail classes on every seed' in message
    assert 'seed 1 -5.00 (fails)' in message and outputs['results_md'] in message
    assert isinstance(error.value, DemoError)  # `make demo` exits with status 1
    printed = capsys.readouterr().out
    assert '[demo] FAIL: phase 2 raises' in printed and '[demo] PASS: PCCA beats linear' in printed
    # --quick prints the same lines and goes on.
    demo_claims.check_paper_claims(outputs['results_json'], enforce=False)
    printed = capsys.readouterr().out
    assert 'not enforced' in printed and '[demo] FAIL: phase 2 raises' in printed


def test_claim_differences_are_pcca_minus_linear_and_phase2_minus_pcca():
    table = dict(linear={'frame_mAP@0.5': 50.0}, pcca={'frame_mAP@0.5': 70.0})
    group_ap = dict(
        linear=dict(motion=80.0, context=30.0),
        pcca=dict(motion=85.0, context=62.5, tail=55.0),
        decoupled=dict(tail=60.0),
    )
    differences = demo_claims.claim_differences(table, group_ap, 'frame_mAP@0.5')
    assert differences == dict(
        pcca_minus_linear=20.0,
        pcca_minus_linear_motion=5.0,
        pcca_minus_linear_context=32.5,
        phase2_tail_gain=5.0,
    )
