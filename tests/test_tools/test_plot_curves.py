"""tools/plot_curves.py on real mmengine runs: what it reads is what the runs computed."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import plot_curves  # tools/ (see tests/conftest.py)
import pytest
from matplotlib import colors as mcolors
from PIL import Image

from .toy_runner import (
    BASE_LR,
    ITERATIONS_PER_EPOCH,
    LOG_INTERVAL,
    LR_GAMMA,
    LR_MILESTONE,
    METRIC_PREFIX,
    RecordLosses,
    ToyMetric,
    run_toy_training,
)

METRIC = f'{METRIC_PREFIX}/mse'
#: matplotlib's first two default colours (the two runs' lines).
RUN_COLOURS = ('tab:blue', 'tab:orange')


def logged_iterations(max_epochs, first_epoch=1):
    """Global iterations LoggerHook logs: every LOG_INTERVAL-th of an epoch (the last one
    only when it falls on the interval: ignore_last)."""
    return [
        (epoch - 1) * ITERATIONS_PER_EPOCH + inner
        for epoch in range(first_epoch, max_epochs + 1)
        for inner in range(1, ITERATIONS_PER_EPOCH + 1)
        if inner % LOG_INTERVAL == 0
    ]


def train(work_dir, max_epochs, resume=False):
    """A toy run; returns the metric values and losses it computed."""
    ToyMetric.history = []
    RecordLosses.losses = {}
    run_toy_training(str(work_dir), max_epochs, resume=resume)
    return list(ToyMetric.history), dict(RecordLosses.losses)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """run_a: 3 epochs. run_b: 2 epochs, then resumed to 4 in a new timestamp folder."""
    root = tmp_path_factory.mktemp('curves')
    a_metrics, a_losses = train(root / 'run_a', 3)
    b_metrics, b_losses = train(root / 'run_b', 2)
    time.sleep(1.1)  # mmengine names a run's folder by the second it started
    b2_metrics, b2_losses = train(root / 'run_b', 4, resume=True)
    return dict(
        root=root,
        a=dict(metrics=a_metrics, losses=a_losses),
        b=dict(metrics=b_metrics + b2_metrics, losses={**b_losses, **b2_losses}),
    )


def test_curves_are_what_the_run_computed(runs):
    run = plot_curves.load_run(str(runs['root'] / 'run_a'))
    assert run.label == 'run_a' and run.x_unit == 'epoch' and len(run.files) == 1
    # Validation: one point per epoch, the values the metric computed.
    epochs, values = run.val[METRIC]
    np.testing.assert_array_equal(epochs, [1, 2, 3])
    np.testing.assert_allclose(values, runs['a']['metrics'])
    # Loss: every logged iteration, at its position in epochs, the iteration's own loss.
    iterations = logged_iterations(3)
    x, loss = run.train['loss']
    np.testing.assert_allclose(x, np.array(iterations) / ITERATIONS_PER_EPOCH)
    np.testing.assert_allclose(loss, [runs['a']['losses'][i] for i in iterations], rtol=1e-6)
    # lr: the step schedule, dropping after LR_MILESTONE epochs.
    x, lr = run.train['lr']
    expected = np.where(x <= LR_MILESTONE, BASE_LR, BASE_LR * LR_GAMMA)
    np.testing.assert_allclose(lr, expected)
    assert set(run.train) == {'loss', 'lr'}  # timings are not curves


def test_a_resumed_run_continues_its_curves(runs):
    run = plot_curves.load_run(str(runs['root'] / 'run_b'))
    assert len(run.files) == 2  # one timestamp folder per start
    epochs, values = run.val[METRIC]
    np.testing.assert_array_equal(epochs, [1, 2, 3, 4])
    np.testing.assert_allclose(values, runs['b']['metrics'])
    x, loss = run.train['loss']
    iterations = logged_iterations(4)
    np.testing.assert_allclose(x, np.array(iterations) / ITERATIONS_PER_EPOCH)
    np.testing.assert_allclose(loss, [runs['b']['losses'][i] for i in iterations], rtol=1e-6)


def test_command_line_draws_both_runs_into_a_png(runs, tmp_path, capsys):
    out = tmp_path / 'figures' / 'curves.png'
    root = runs['root']
    plot_curves.main([str(root / 'run_a'), str(root / 'run_b'), '--out', str(out)])
    printed = capsys.readouterr().out
    assert 'run_a: 1 scalars.json' in printed and 'run_b: 2 scalars.json' in printed
    assert f'3 panels (loss, lr, {METRIC} (validation))' in printed
    image = np.asarray(Image.open(out).convert('RGB'))
    assert image.shape[0] > 200 and image.shape[1] > 600
    for colour in RUN_COLOURS:  # a line of each run was drawn
        rgb = np.round(np.array(mcolors.to_rgb(colour)) * 255)
        close = np.abs(image.astype(int) - rgb).max(axis=-1) <= 10
        assert close.sum() > 100, colour
    assert not list(out.parent.glob('tmp*')), 'the temporary file was left behind'


def test_the_panels_cover_loss_lr_and_every_metric(runs):
    run_a = plot_curves.load_run(str(runs['root'] / 'run_a'))
    panels = plot_curves.panel_order([run_a])
    assert panels == [('train', 'loss'), ('train', 'lr'), ('val', METRIC)]


def test_same_folder_names_are_told_apart_by_their_parent():
    labels = plot_curves.unique_labels(['work/seed_0/pcca', 'work/seed_1/pcca'])
    assert labels == ['seed_0/pcca', 'seed_1/pcca']
    assert plot_curves.unique_labels(['work/linear', 'work/pcca']) == ['linear', 'pcca']


def test_a_work_dir_without_scalars_names_the_folder_and_the_fix(tmp_path, repo_root):
    # A test-only run leaves a timestamp folder without scalars.json.
    (tmp_path / 'tested' / '20260101_000000' / 'vis_data').mkdir(parents=True)
    for work_dir in (tmp_path / 'tested', tmp_path / 'missing'):
        with pytest.raises(plot_curves.ScalarsNotFoundError, match='tools/train.py') as error:
            plot_curves.find_scalar_files(str(work_dir))
        assert str(work_dir) in str(error.value)
    command = [sys.executable, os.path.join(repo_root, 'tools', 'plot_curves.py')]
    result = subprocess.run(
        command + [str(tmp_path / 'tested'), '--out', str(tmp_path / 'x.png')],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert str(tmp_path / 'tested') in result.stderr and 'LocalVisBackend' in result.stderr
    assert not (tmp_path / 'x.png').exists()


def test_a_truncated_line_is_named(tmp_path):
    vis_data = tmp_path / 'run' / '20260101_000000' / 'vis_data'
    vis_data.mkdir(parents=True)
    good = json.dumps(dict(lr=0.1, loss=1.0, epoch=1, iter=1, step=1))
    (vis_data / 'scalars.json').write_text(good + '\n{"lr": 0.1, "lo\n')
    with pytest.raises(ValueError, match=r'scalars\.json: line 2 is not JSON'):
        plot_curves.load_run(str(tmp_path / 'run'))


def test_iterations_per_epoch_from_the_logged_pairs():
    # 120 iterations an epoch, logged every 50 (the last one of an epoch not logged):
    # the estimate is short by less than one logging interval.
    interval, per_epoch = 50, 120
    pairs = [
        (epoch, (epoch - 1) * per_epoch + inner)
        for epoch in (1, 2, 3)
        for inner in range(interval, per_epoch + 1, interval)
    ]
    estimate = plot_curves.iterations_per_epoch(pairs)
    assert per_epoch - interval < estimate <= per_epoch
    # With each epoch's last iteration logged, it is exact.
    pairs += [(epoch, epoch * per_epoch) for epoch in (1, 2, 3)]
    assert plot_curves.iterations_per_epoch(pairs) == per_epoch
