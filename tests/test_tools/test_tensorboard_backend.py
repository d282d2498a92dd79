"""The TensorBoard backend of docs/inference.md: a real run writes event files with its scalars.

``vis_backends=[dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]``
(mmengine's, through ``torch.utils.tensorboard``; ``tensorboard`` is in the
``tests`` extra of setup.py). The events are read back with TensorBoard's own
reader and compared with what the run computed and with ``scalars.json``.
"""

import glob
import json
import os

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from .toy_runner import (
    ITERATIONS_PER_EPOCH,
    METRIC_PREFIX,
    RecordLosses,
    ToyMetric,
    run_toy_training,
)

BACKENDS = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
MAX_EPOCHS = 2


@pytest.fixture(scope='module')
def tensorboard_run(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('tensorboard')
    ToyMetric.history = []
    RecordLosses.losses = {}
    run_toy_training(str(work_dir), MAX_EPOCHS, vis_backends=BACKENDS)
    return dict(
        work_dir=str(work_dir), metrics=list(ToyMetric.history), losses=dict(RecordLosses.losses)
    )


def test_event_files_hold_the_runs_scalars(tensorboard_run):
    events = glob.glob(
        os.path.join(tensorboard_run['work_dir'], '*', 'vis_data', 'events.out.tfevents.*')
    )
    assert len(events) == 1, events
    accumulator = EventAccumulator(os.path.dirname(events[0]))
    accumulator.Reload()
    tags = accumulator.Tags()['scalars']
    metric = f'{METRIC_PREFIX}/mse'
    assert {'loss', 'lr', metric} <= set(tags), tags
    # Validation: one value per epoch (step = epoch), the values the metric computed.
    values = accumulator.Scalars(metric)
    assert [event.step for event in values] == list(range(1, MAX_EPOCHS + 1))
    assert [event.value for event in values] == pytest.approx(tensorboard_run['metrics'], rel=1e-6)
    # Loss: the logged iterations (step = global iteration), each its own loss.
    losses = accumulator.Scalars('loss')
    assert losses and all(1 <= e.step <= MAX_EPOCHS * ITERATIONS_PER_EPOCH for e in losses)
    for event in losses:
        assert event.value == pytest.approx(tensorboard_run['losses'][event.step], rel=1e-6)


def test_the_local_backend_still_writes_the_same_scalars(tensorboard_run):
    """Both backends side by side: scalars.json (tools/plot_curves.py) gets the same values."""
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
