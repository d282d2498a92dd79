"""The training-curve reader and plots (pcca_plugin.visualization.training_curves) on real runs.

What it reads is what the mmengine runs computed (:mod:`pcca_plugin.testing.toy_runner`);
the TensorBoard backend of docs/inference.md, beside the local one, logs the same scalars.
"""

import glob
import json
import os

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from pcca_plugin.testing.toy_runner import (
    BASE_LR,
    ITERATIONS_PER_EPOCH,
    LR_GAMMA,
    LR_MILESTONE,
    METRIC,
    logged_iterations,
    train_recorded,
    train_two_runs,
)
from pcca_plugin.visualization import training_curves

#: ``vis_backends=[dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]``
#: (mmengine's, through ``torch.utils.tensorboard``; ``tensorboard`` is in the ``tests``
#: extra of setup.py).
BACKENDS = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
TENSORBOARD_EPOCHS = 2


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """run_a: 3 epochs. run_b: 2 epochs, then resumed to 4 in a new timestamp folder."""
    return train_two_runs(tmp_path_factory.mktemp('curves'))


def test_curves_are_what_the_run_computed(runs):
    run = training_curves.load_run(str(runs['root'] / 'run_a'))
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
    run = training_curves.load_run(str(runs['root'] / 'run_b'))
    assert len(run.files) == 2  # one timestamp folder per start
    epochs, values = run.val[METRIC]
    np.testing.assert_array_equal(epochs, [1, 2, 3, 4])
    np.testing.assert_allclose(values, runs['b']['metrics'])
    x, loss = run.train['loss']
    iterations = logged_iterations(4)
    np.testing.assert_allclose(x, np.array(iterations) / ITERATIONS_PER_EPOCH)
    np.testing.assert_allclose(loss, [runs['b']['losses'][i] for i in iterations], rtol=1e-6)


def test_the_panels_cover_loss_lr_and_every_metric(runs):
    run_a = training_curves.load_run(str(runs['root'] / 'run_a'))
    panels = training_curves.panel_order([run_a])
    assert panels == [('train', 'loss'), ('train', 'lr'), ('val', METRIC)]


def test_plot_curves_draws_every_panel_and_leaves_no_temporary_file(runs, tmp_path):
    loaded = [training_curves.load_run(str(runs['root'] / name)) for name in ('run_a', 'run_b')]
    out = tmp_path / 'figures' / 'curves.png'
    titles = training_curves.plot_curves(loaded, str(out), title='two runs')
    assert titles == ['loss', 'lr', f'{METRIC} (validation)']
    assert out.stat().st_size > 0
    assert not list(out.parent.glob('tmp*')), 'the temporary file was left behind'


def test_same_folder_names_are_told_apart_by_their_parent():
    labels = training_curves.unique_labels(['work/seed_0/pcca', 'work/seed_1/pcca'])
    assert labels == ['seed_0/pcca', 'seed_1/pcca']
    assert training_curves.unique_labels(['work/linear', 'work/pcca']) == ['linear', 'pcca']


def test_a_work_dir_without_scalars_names_the_folder_and_the_fix(tmp_path):
    # A test-only run leaves a timestamp folder without scalars.json.
    (tmp_path / 'tested' / '20260101_000000' / 'vis_data').mkdir(parents=True)
    for work_dir in (tmp_path / 'tested', tmp_path / 'missing'):
        with pytest.raises(training_curves.ScalarsNotFoundError, match='tools/train.py') as error:
            training_curves.find_scalar_files(str(work_dir))
        assert str(work_dir) in str(error.value)


def test_a_truncated_line_is_named(tmp_path):
    vis_data = tmp_path / 'run' / '20260101_000000' / 'vis_data'
    vis_data.mkdir(parents=True)
    good = json.dumps(dict(lr=0.1, loss=1.0, epoch=1, iter=1, step=1))
    (vis_data / 'scalars.json').write_text(good + '\n{"lr": 0.1, "lo\n')
    with pytest.raises(ValueError, match=r'scalars\.json: line 2 is not JSON'):
        training_curves.load_run(str(tmp_path / 'run'))


def test_iterations_per_epoch_from_the_logged_pairs():
    # 120 iterations an epoch, logged every 50 (the last one of an epoch not logged):
    # the estimate is short by less than one logging interval.
    interval, per_epoch = 50, 120
    pairs = [
        (epoch, (epoch - 1) * per_epoch + inner)
        for epoch in (1, 2, 3)
        for inner in range(interval, per_epoch + 1, interval)
    ]
    estimate = training_curves.iterations_per_epoch(pairs)
    assert per_epoch - interval < estimate <= per_epoch
    # With each epoch's last iteration logged, it is exact.
    pairs += [(epoch, epoch * per_epoch) for epoch in (1, 2, 3)]
    assert training_curves.iterations_per_epoch(pairs) == per_epoch


@pytest.fixture(scope='module')
def tensorboard_run(tmp_path_factory):
    """A real run with both backends: event files (read back with TensorBoard's own reader)
    and scalars.json, compared with what the run computed."""
    work_dir = tmp_path_factory.mktemp('tensorboard')
    metrics, losses = train_recorded(str(work_dir), TENSORBOARD_EPOCHS, vis_backends=BACKENDS)
    return dict(work_dir=str(work_dir), metrics=metrics, losses=losses)


def test_event_files_hold_the_runs_scalars(tensorboard_run):
    events = glob.glob(
        os.path.join(tensorboard_run['work_dir'], '*', 'vis_data', 'events.out.tfevents.*')
    )
    assert len(events) == 1, events
    accumulator = EventAccumulator(os.path.dirname(events[0]))
    accumulator.Reload()
    tags = accumulator.Tags()['scalars']
    assert {'loss', 'lr', METRIC} <= set(tags), tags
    # Validation: one value per epoch (step = epoch), the values the metric computed.
    values = accumulator.Scalars(METRIC)
    assert [event.step for event in values] == list(range(1, TENSORBOARD_EPOCHS + 1))
    assert [event.value for event in values] == pytest.approx(tensorboard_run['metrics'], rel=1e-6)
    # Loss: the logged iterations (step = global iteration), each its own loss.
    losses = accumulator.Scalars('loss')
    assert losses and all(1 <= e.step <= TENSORBOARD_EPOCHS * ITERATIONS_PER_EPOCH for e in losses)
    for event in losses:
        assert event.value == pytest.approx(tensorboard_run['losses'][event.step], rel=1e-6)


def test_the_local_backend_still_writes_the_same_scalars(tensorboard_run):
    """Both backends side by side: scalars.json (what load_run reads) gets the same values."""
    (scalars,) = glob.glob(
        os.path.join(tensorboard_run['work_dir'], '*', 'vis_data', 'scalars.json')
    )
    with open(scalars) as f:
        lines = [json.loads(line) for line in f]
    logged = {line['step']: line['loss'] for line in lines if 'loss' in line}
    accumulator = EventAccumulator(os.path.dirname(scalars))
    accumulator.Reload()
    from_events = {event.step: event.value for event in accumulator.Scalars('loss')}
    assert from_events.keys() == logged.keys()
    for step, value in logged.items():
        assert from_events[step] == pytest.approx(value, rel=1e-6)
