"""The main job (`make demo --quick`) end to end: outputs, sane metrics, resume, claims.

Seed 0 runs in this process through the package (:func:`pcca_plugin.demo.run_demo`,
interrupted and resumed); then ``tools/run_demo.py`` runs as a user runs it. The
parts that need no training are tested in tests/test_demo/.
"""

import json
import os

import numpy as np
import pytest
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from pcca_plugin.demo import pipeline
from pcca_plugin.demo.claims import CLAIMS
from pcca_plugin.demo.report import report_paths
from pcca_plugin.demo.settings import (
    QUICK_SEEDS,
    STAGES,
    STATE_FILE,
    TABLE_COLUMNS,
    DemoSettings,
    seed_work_dir,
)
from pcca_plugin.evaluation.functional import (
    PAPER_TABLE_FIGURES,
    frame_ap,
    load_ground_truth,
    server2021_figures,
)
from pcca_plugin.testing import run_tool
from pcca_plugin.testing.demo import PASSING_SEED, failing, write_seed
from pcca_plugin.utils.pickle_io import load_pickle
from pcca_plugin.visualization.training_curves import load_run

MODELS = ('linear', 'pcca', 'decoupled')
OUTPUTS = (
    'results_json',
    'results_md',
    'per_class_png',
    'annotated_mp4',
    'annotated_gif',
    'training_curves_png',
)
#: Seconds a demo command may take (the quick demo takes about 3 minutes on 2 cores).
DEMO_TIMEOUT = 900


class Interrupted(Exception):
    """Stands for a Ctrl-C in the middle of a stage."""


def chance_frame_map(gt_file: str, frame_detections_file: str, seed: int = 0) -> float:
    """frame-mAP of the same detections with their scores shuffled (a chance baseline)."""
    detections = load_pickle(frame_detections_file).copy()
    rng = np.random.default_rng(seed)
    detections[:, 3] = rng.permutation(detections[:, 3])
    return frame_ap(load_ground_truth(gt_file), detections, 0.5).mean_ap


def seed_state(work_dir: str, seed: int) -> dict:
    path = os.path.join(seed_work_dir(work_dir, seed), STATE_FILE)
    with open(path) as f:
        return json.load(f)


@pytest.fixture(scope='module')
def quick_demo(tmp_path_factory):
    """--quick: seed 0 in process, interrupted in its pcca test stage and resumed; then the
    command line with the default quick seeds, which runs the seeds in parallel processes
    (seed 0 finished: reused) and writes the report over seeds."""
    work_dir = str(tmp_path_factory.mktemp('demo'))
    real_test_stage = pipeline.test_stage

    def failing_test_stage(model, *args, **kwargs):
        if model == 'pcca':
            raise Interrupted
        return real_test_stage(model, *args, **kwargs)

    pipeline.test_stage = failing_test_stage
    try:
        with pytest.raises(Interrupted):
            pipeline.run_demo(work_dir, seeds=[0], quick=True)
    finally:
        pipeline.test_stage = real_test_stage
    first_state = seed_state(work_dir, 0)
    checkpoint = first_state['stages']['train_pcca']['outputs']['checkpoint']
    checkpoint_mtime = os.path.getmtime(checkpoint)
    single_seed_report = pipeline.run_demo(work_dir, seeds=[0], quick=True)
    resumed_state = seed_state(work_dir, 0)
    cli = run_tool('run_demo.py', '--quick', '--work-dir', work_dir, timeout=DEMO_TIMEOUT)
    assert cli.returncode == 0, cli.stdout[-3000:] + cli.stderr[-3000:]
    report = report_paths(work_dir)
    return dict(
        work_dir=work_dir,
        first_state=first_state,
        resumed_state=resumed_state,
        single_seed_report=single_seed_report,
        report=report,
        cli_output=cli.stdout,
        checkpoint=checkpoint,
        checkpoint_mtime=checkpoint_mtime,
    )


def test_every_output_exists(quick_demo):
    for report in (quick_demo['report'], quick_demo['single_seed_report']):
        for name in OUTPUTS:
            path = report[name]
            assert os.path.isfile(path) and os.path.getsize(path) > 0, name
    for seed in QUICK_SEEDS:
        seed_dir = seed_work_dir(quick_demo['work_dir'], seed)
        assert os.path.isfile(os.path.join(seed_dir, 'results.json')), seed


def test_metrics_finite_and_above_chance_for_every_seed(quick_demo):
    work_dir = quick_demo['work_dir']
    for seed in QUICK_SEEDS:
        state = seed_state(work_dir, seed)
        with open(os.path.join(seed_work_dir(work_dir, seed), 'results.json')) as f:
            results = json.load(f)
        gt_file = state['stages']['data']['outputs']['gt_file']
        for model in MODELS:
            table = results['table'][model]
            for key, _ in TABLE_COLUMNS:
                assert np.isfinite(table[key]) and 0 <= table[key] <= 100, (seed, model, key)
            detections = state['stages'][f'test_{model}']['outputs']['frame_detections']
            chance = chance_frame_map(gt_file, detections)
            assert table['frame_mAP@0.5'] > chance, (seed, model, table['frame_mAP@0.5'], chance)


def test_report_gives_the_2021_server_figures_beside_todays(quick_demo):
    seed = QUICK_SEEDS[0]
    state = seed_state(quick_demo['work_dir'], seed)
    with open(os.path.join(seed_work_dir(quick_demo['work_dir'], seed), 'results.json')) as f:
        table = json.load(f)['table']
    gt_file = state['stages']['data']['outputs']['gt_file']
    for model in MODELS:
        dumps = state['stages'][f'test_{model}']['outputs']
        figures = server2021_figures(gt_file, dumps['frame_detections'], dumps['video_detections'])
        for name in PAPER_TABLE_FIGURES:
            assert table[model][f'server2021/{name}'] == figures[name], (model, name)
    with open(quick_demo['report']['results_md']) as f:
        header = next(line for line in f if line.startswith('| head |'))
    for name in PAPER_TABLE_FIGURES:
        assert f'| {name} |' in header and f'| {name} (2021 server) |' in header


def test_summary_is_the_mean_and_std_over_the_seeds(quick_demo):
    work_dir = quick_demo['work_dir']
    with open(quick_demo['report']['results_json']) as f:
        summary = json.load(f)
    assert summary['seeds'] == list(QUICK_SEEDS)
    per_seed = []
    for seed in QUICK_SEEDS:
        with open(os.path.join(seed_work_dir(work_dir, seed), 'results.json')) as f:
            per_seed.append(json.load(f))
    for model in MODELS:
        for key, _ in TABLE_COLUMNS:
            values = [report['table'][model][key] for report in per_seed]
            mean, std = summary['table'][model][key]
            assert mean == pytest.approx(np.mean(values)) and std == pytest.approx(np.std(values))
    gaps = [
        r['table']['pcca']['frame_mAP@0.5'] - r['table']['linear']['frame_mAP@0.5']
        for r in per_seed
    ]
    assert summary['checks']['mean']['pcca_minus_linear'] == pytest.approx(np.mean(gaps))
    with open(quick_demo['report']['results_md']) as f:
        text = f.read()
    assert 'mean ± std over seeds [0, 1]' in text and '| mean |' in text


def test_quick_demo_prints_every_claim_without_enforcing_it(quick_demo):
    """The claims need the full demo's data: --quick prints them (PASS or FAIL, whichever
    its figures give), says they are not enforced, and exits 0 (the fixture checked)."""
    with open(quick_demo['report']['results_json']) as f:
        summary = json.load(f)
    claims = {claim['name']: claim for claim in summary['claims']}
    assert list(claims) == [name for name, _ in CLAIMS] and summary['quick'] is True
    gaps = summary['checks']
    for seed in QUICK_SEEDS:  # each verdict follows the seed's own figures
        verdict = claims['pcca_beats_linear']['seeds'][str(seed)]['passed']
        assert verdict == (gaps[str(seed)]['pcca_minus_linear'] > 0)
    with open(quick_demo['report']['results_md']) as f:
        text = f.read()
    out = quick_demo['cli_output']
    assert 'printed, not enforced' in text and '(--quick: printed, not enforced)' in out
    for name, statement in CLAIMS:
        verdict = 'PASS' if claims[name]['passed'] else 'FAIL'
        assert f'- {verdict}: {statement} (' in text
        assert f'[demo] {verdict}: {statement} (' in out


def test_training_curves_show_the_three_runs_of_each_seed(quick_demo):
    for seed in QUICK_SEEDS:
        seed_dir = seed_work_dir(quick_demo['work_dir'], seed)
        for model in MODELS:
            run = load_run(os.path.join(seed_dir, model))
            x, loss = run.train['loss']
            assert run.x_unit == 'epoch' and np.all(np.isfinite(loss)), (seed, model)
            epochs = (
                DemoSettings.quick().phase2_epochs
                if model == 'decoupled'
                else DemoSettings.quick().phase1_epochs
            )
            # ignore_last=False: each epoch's last iteration is logged, at a whole epoch.
            assert x[-1] == pytest.approx(epochs), (seed, model, x)
    for report in (quick_demo['report'], quick_demo['single_seed_report']):
        assert os.path.getsize(report['training_curves_png']) > 10_000


def test_command_line_shows_stages_progress_and_outputs(quick_demo):
    out = quick_demo['cli_output']
    number = f'{STAGES.index("train_linear") + 1}/{len(STAGES)}'
    assert f'[seed 0] stage {number} train_linear: already done' in out  # seed 0 reused
    assert f'[seed 1] ===== stage {number}: train_linear =====' in out
    assert '[seed 1] linear train [' in out and '(100%)' in out  # a progress bar per stage
    assert '[seed 1] train_linear: done in' in out  # the time each stage took
    assert f'results_md: {quick_demo["report"]["results_md"]}' in out  # where the outputs are


def test_interrupted_run_resumes_without_recomputing(quick_demo):
    first = quick_demo['first_state']['stages']
    # Before the interruption (in test_pcca): every earlier stage, i.e. data, pretraining,
    # the three trainings and the linear test.
    interrupted = STAGES.index('test_pcca')
    assert set(first) == set(STAGES[:interrupted])
    assert {'pretrain', 'train_decoupled', 'test_linear'} <= set(first)
    final = seed_state(quick_demo['work_dir'], 0)['stages']
    assert final == quick_demo['resumed_state']['stages'], 'the command line redid seed 0'
    for stage, record in first.items():
        assert final[stage] == record, f'{stage} was recomputed'
    assert os.path.getmtime(quick_demo['checkpoint']) == quick_demo['checkpoint_mtime']
    assert {'test_pcca', 'test_decoupled', 'report'} <= set(final)


def test_a_seeded_rerun_gives_the_same_figures(quick_demo, tmp_path):
    """Seed 0 again, from scratch, in its own process (the fixture ran it inside pytest, was
    interrupted and resumed): every figure of the report is the same."""
    rerun = run_tool(
        'run_demo.py', '--quick', '--seeds', '0', '--work-dir', tmp_path, timeout=DEMO_TIMEOUT
    )
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    reports = []
    for work_dir in (quick_demo['work_dir'], str(tmp_path)):
        with open(os.path.join(seed_work_dir(work_dir, 0), 'results.json')) as f:
            reports.append(json.load(f))
    for model in MODELS:
        for key, _ in TABLE_COLUMNS:
            first, again = (report['table'][model][key] for report in reports)
            assert again == pytest.approx(first, abs=1e-6), (model, key)
        assert reports[1]['per_class_frame_ap'][model] == pytest.approx(
            reports[0]['per_class_frame_ap'][model], abs=1e-6
        )


def test_heads_train_on_the_pretrained_backbone_which_stays_frozen(quick_demo):
    """Both phase-1 detectors hold exactly the pretrained backbone weights (loaded, then
    frozen), and that backbone differs from a fresh random initialisation."""
    import torch

    stages = seed_state(quick_demo['work_dir'], 0)['stages']
    pretrained = torch.load(stages['pretrain']['outputs']['backbone'])
    pretrained = pretrained['state_dict']
    assert pretrained and all(name.startswith('backbone.') for name in pretrained)
    for model in ('linear', 'pcca'):
        checkpoint = stages[f'train_{model}']['outputs']['checkpoint']
        weights = torch.load(checkpoint)['state_dict']
        for name, value in pretrained.items():
            assert torch.equal(weights[name], value), (model, name)
        assert any(name.startswith('roi_head.') for name in weights)
    cfg = pipeline.load_demo_config(
        'linear', 'data/toy_sports', quick_demo['work_dir'], 0, DemoSettings.quick()
    )
    cfg.model.init_cfg = None
    from mmdet.registry import MODELS as DET_MODELS

    fresh = DET_MODELS.build(cfg.model)
    fresh.init_weights()
    fresh_weights = fresh.state_dict()
    assert any(
        not torch.equal(fresh_weights[name], value)
        for name, value in pretrained.items()
        if value.is_floating_point()
    ), 'the pretrain stage left the backbone at its random initialisation'


@HOOKS.register_module(force=True)
class StopAfterFirstEpoch(Hook):
    """Stands for a Ctrl-C right after the first epoch's checkpoint was written."""

    priority = 'LOWEST'  # after mmengine's CheckpointHook (VERY_LOW) saved epoch_1.pth

    def after_train_epoch(self, runner) -> None:
        raise Interrupted


@HOOKS.register_module(force=True)
class RecordTraining(Hook):
    """Records where a training run starts and how many iterations it runs (class state:
    the Runner builds its own instance from the config)."""

    start_epoch = None
    iterations = 0

    def before_train(self, runner) -> None:
        RecordTraining.start_epoch = runner.epoch
        RecordTraining.iterations = 0

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        RecordTraining.iterations += 1


def test_training_interrupted_mid_stage_resumes_from_its_own_checkpoint(
    quick_demo, tmp_path, monkeypatch
):
    """Phase 2 (which starts from the phase-1 weights) stopped after 1 of 2 epochs resumes at
    epoch 1 from its own checkpoint: it neither restarts nor resumes the phase-1 run."""
    settings = DemoSettings.quick()
    settings.phase2_epochs = 2
    data_root = os.path.join(seed_work_dir(quick_demo['work_dir'], 0), 'data')
    phase1 = quick_demo['checkpoint']
    work_dir = str(tmp_path / 'decoupled')
    real_load = pipeline.load_demo_config
    extra_hooks = []

    def load_with_hooks(*args, **kwargs):
        cfg = real_load(*args, **kwargs)
        cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + extra_hooks
        return cfg

    monkeypatch.setattr(pipeline, 'load_demo_config', load_with_hooks)
    extra_hooks[:] = [dict(type='RecordTraining'), dict(type='StopAfterFirstEpoch')]
    with pytest.raises(Interrupted):
        pipeline.train_stage('decoupled', data_root, work_dir, 0, settings, load_from=phase1)
    first_epoch_iterations = RecordTraining.iterations
    assert first_epoch_iterations > 0 and os.path.isfile(os.path.join(work_dir, 'epoch_1.pth'))

    extra_hooks[:] = [dict(type='RecordTraining')]
    outputs = pipeline.train_stage('decoupled', data_root, work_dir, 0, settings, load_from=phase1)
    assert RecordTraining.start_epoch == 1, 'the resumed run did not start after epoch 1'
    assert RecordTraining.iterations == first_epoch_iterations, 'not exactly one epoch more'
    assert outputs['checkpoint'] == os.path.join(work_dir, 'epoch_2.pth')
    assert os.path.isfile(outputs['checkpoint'])


def test_full_demo_exits_non_zero_when_a_claim_fails(tmp_path):
    """Constructed seeds (tests/test_demo/test_claims.py checks the claims themselves): the
    command line writes every output, then exits with status 1 and the failed claim."""
    settings = DemoSettings.full()
    write_seed(tmp_path, 0, PASSING_SEED, settings)
    write_seed(tmp_path, 1, failing('gain_larger_on_context'), settings)
    result = run_tool(
        'run_demo.py', '--seeds', '0', '1', '--jobs', '1', '--work-dir', tmp_path, timeout=300
    )
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "run_demo.py: error: 1 of the paper's 3 claims FAILED" in result.stderr
    assert 'FAIL: the gain of PCCA over linear is larger on the context classes' in result.stderr
    assert 'Traceback' not in result.stderr  # one line; --debug shows the traceback
    # Every output was written before the verdict.
    report = report_paths(str(tmp_path))
    for path in report.values():
        assert os.path.isfile(path), path
    with open(report['results_md']) as f:
        assert '- FAIL: the gain of PCCA over linear' in f.read()
    with open(report['results_json']) as f:
        assert np.isfinite(json.load(f)['checks']['mean']['pcca_minus_linear'])
