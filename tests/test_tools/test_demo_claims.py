"""The demo's claim checks: PASS / FAIL lines in results.md, a failing claim stops `make demo`.

The per-seed results are constructed (the full demo takes 12 minutes); everything
after them is the demo's own code: the summary over seeds, the claim checks, the
command line and its exit status.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import report_demo  # tools/ (see tests/conftest.py)
import run_demo  # tools/

MODELS = [model for model, _, _ in run_demo.MODEL_ROWS]
CLASS_GROUPS = {
    'motion': ['run left', 'jump'],
    'context': ['carry red ball', 'jump with red ball'],
    'tail': ['jump with red ball'],
}
#: A seed on which every claim holds: PCCA > linear (F@0.5), its gain larger on the
#: context classes (+30 / +35) than on motion (+5), phase 2 raising the tail class (+5).
PASSING_SEED = dict(
    frame_map=dict(linear=50.0, pcca=70.0, decoupled=72.0),
    per_class=dict(
        linear={'run left': 80.0, 'jump': 80.0, 'carry red ball': 40.0, 'jump with red ball': 20.0},
        pcca={'run left': 85.0, 'jump': 85.0, 'carry red ball': 70.0, 'jump with red ball': 55.0},
        decoupled={
            'run left': 85.0,
            'jump': 85.0,
            'carry red ball': 70.0,
            'jump with red ball': 60.0,
        },
    ),
)


def seed_report(frame_map, per_class):
    """A seed's results.json content, its group means computed by the report's own code."""
    table = {
        model: {
            key: (frame_map[model] if i == 0 else 0.0)
            for i, (key, _) in enumerate(run_demo.TABLE_COLUMNS)
        }
        for model in MODELS
    }
    return dict(
        table=table,
        per_class_frame_ap=per_class,
        group_frame_ap={m: report_demo.group_means(per_class[m], CLASS_GROUPS) for m in MODELS},
        class_groups=CLASS_GROUPS,
        annotated_video='video_0',
    )


def failing(claim):
    """PASSING_SEED changed so that exactly ``claim`` fails."""
    seed = json.loads(json.dumps(PASSING_SEED))
    if claim == 'pcca_beats_linear':
        seed['frame_map']['linear'] = 75.0
    elif claim == 'gain_larger_on_context':
        seed['per_class']['pcca']['run left'] = 100.0  # motion gain +20 > context gain +10
        seed['per_class']['pcca']['jump'] = 100.0
        seed['per_class']['pcca']['carry red ball'] = 45.0
        seed['per_class']['pcca']['jump with red ball'] = 35.0
        seed['per_class']['decoupled'] = dict(
            seed['per_class']['pcca'], **{'jump with red ball': 40.0}
        )
    elif claim == 'phase2_raises_tail':
        seed['per_class']['decoupled']['jump with red ball'] = 50.0
    return seed


def write_seed(work_dir, seed, figures, settings=None):
    """A finished seed: results.json, the annotated video files, one scalars.json per
    training run and (with ``settings``) a state file where every stage is done."""
    seed_dir = run_demo.seed_work_dir(str(work_dir), seed)
    os.makedirs(seed_dir, exist_ok=True)
    paths = report_demo.report_paths(seed_dir)
    with open(paths['results_json'], 'w') as f:
        json.dump(seed_report(**figures), f)
    for key in ('annotated_mp4', 'annotated_gif'):
        with open(paths[key], 'wb') as f:
            f.write(b'video bytes')
    for model in MODELS:
        vis_data = os.path.join(seed_dir, model, '20260101_000000', 'vis_data')
        os.makedirs(vis_data, exist_ok=True)
        with open(os.path.join(vis_data, 'scalars.json'), 'w') as f:
            for iteration in (1, 2):
                line = dict(lr=0.1, loss=1.0 / iteration, epoch=iteration, iter=iteration)
                f.write(json.dumps(dict(line, step=iteration)) + '\n')
    if settings is not None:
        state = run_demo.StageState(os.path.join(seed_dir, run_demo.STATE_FILE), settings, seed)
        outputs = dict(backbone='backbone.pth', checkpoint='epoch_1.pth', data_root='data')
        for stage in run_demo.STAGES[:-1]:
            state.finish(stage, outputs, 0.0)
        state.finish('report', paths, 0.0)
    return paths['results_json']


def summary_claims(work_dir, seeds_figures, quick=False):
    reports = {seed: write_seed(work_dir, seed, figures) for seed, figures in seeds_figures.items()}
    outputs = report_demo.write_summary(
        str(work_dir), reports, run_demo.MODEL_ROWS, run_demo.TABLE_COLUMNS, quick=quick
    )
    with open(outputs['results_json']) as f:
        claims = json.load(f)['claims']
    with open(outputs['results_md']) as f:
        return outputs, claims, f.read()


def test_every_claim_passes_on_seeds_that_meet_it(tmp_path):
    outputs, claims, text = summary_claims(tmp_path, {0: PASSING_SEED, 1: PASSING_SEED})
    assert [c['name'] for c in claims] == [name for name, _ in report_demo.CLAIMS]
    assert all(c['passed'] for c in claims)
    for _, statement in report_demo.CLAIMS:
        assert f'- PASS: {statement} (seed 0 ' in text
    assert 'FAIL' not in text
    assert '- PASS: PCCA beats linear on F@0.5 on every seed (seed 0 +20.00; seed 1 +20.00)' in text
    assert 'context +32.50 vs motion +5.00' in text
    assert os.path.getsize(outputs['training_curves_png']) > 0
    run_demo.check_paper_claims(outputs['results_json'], enforce=True)  # does not raise


@pytest.mark.parametrize('claim', [name for name, _ in report_demo.CLAIMS])
def test_a_claim_failing_on_one_seed_fails(tmp_path, claim):
    _, claims, text = summary_claims(tmp_path, {0: PASSING_SEED, 3: failing(claim)})
    verdicts = {c['name']: c['passed'] for c in claims}
    assert verdicts == {name: name != claim for name, _ in report_demo.CLAIMS}
    failed = next(c for c in claims if c['name'] == claim)
    assert failed['seeds']['0']['passed'] and not failed['seeds']['3']['passed']
    statement = dict(report_demo.CLAIMS)[claim]
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
    claims = {c['name']: c['passed'] for c in report_demo.check_claims(checks, [0])}
    assert claims == dict(
        pcca_beats_linear=False, gain_larger_on_context=True, phase2_raises_tail=True
    )


def test_a_failed_claim_raises_with_a_clear_message_when_enforced(tmp_path, capsys):
    outputs, _, _ = summary_claims(tmp_path, {0: PASSING_SEED, 1: failing('phase2_raises_tail')})
    with pytest.raises(run_demo.ClaimNotReproduced) as error:
        run_demo.check_paper_claims(outputs['results_json'], enforce=True)
    message = str(error.value)
    assert "1 of the paper's 3 claims FAILED" in message
    assert 'FAIL: phase 2 raises the mean AP of the tail classes on every seed' in message
    assert 'seed 1 -5.00 (fails)' in message and outputs['results_md'] in message
    assert isinstance(error.value, run_demo.DemoError)  # `make demo` exits with status 1
    printed = capsys.readouterr().out
    assert '[demo] FAIL: phase 2 raises' in printed and '[demo] PASS: PCCA beats linear' in printed
    # --quick prints the same lines and goes on.
    run_demo.check_paper_claims(outputs['results_json'], enforce=False)
    printed = capsys.readouterr().out
    assert 'not enforced' in printed and '[demo] FAIL: phase 2 raises' in printed


def test_quick_demo_reports_a_failed_claim_without_failing(tmp_path, capsys):
    settings = run_demo.DemoSettings.quick()
    write_seed(tmp_path, 0, PASSING_SEED, settings)
    write_seed(tmp_path, 1, failing('pcca_beats_linear'), settings)
    report = run_demo.main(
        ['--quick', '--seeds', '0', '1', '--jobs', '1', '--work-dir', str(tmp_path)]
    )
    printed = capsys.readouterr().out
    assert 'stage 1/9 data: already done' in printed  # the constructed seeds were used
    assert '[demo] FAIL: PCCA beats linear on F@0.5 on every seed' in printed
    with open(report['results_md']) as f:
        text = f.read()
    assert '- FAIL: PCCA beats linear' in text and 'printed, not enforced' in text
    with open(report['results_json']) as f:
        assert json.load(f)['quick'] is True


def test_full_demo_exits_non_zero_when_a_claim_fails(tmp_path, repo_root):
    settings = run_demo.DemoSettings.full()
    write_seed(tmp_path, 0, PASSING_SEED, settings)
    write_seed(tmp_path, 1, failing('gain_larger_on_context'), settings)
    command = [sys.executable, os.path.join(repo_root, 'tools', 'run_demo.py')]
    command += ['--seeds', '0', '1', '--jobs', '1', '--work-dir', str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "[demo] error: 1 of the paper's 3 claims FAILED" in result.stderr
    assert 'FAIL: the gain of PCCA over linear is larger on the context classes' in result.stderr
    # Every output was written before the verdict.
    report = report_demo.report_paths(str(tmp_path))
    for path in report.values():
        assert os.path.isfile(path), path
    with open(report['results_md']) as f:
        assert '- FAIL: the gain of PCCA over linear' in f.read()
    assert np.isfinite(
        json.load(open(report['results_json']))['checks']['mean']['pcca_minus_linear']
    )
