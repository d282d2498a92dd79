"""A real, tiny mmengine run for the tests of the training curves and their logs.

A linear regressor (2 inputs, 1 output) trained with mmengine's ``Runner``
for a few epochs on 20 samples, validated every epoch by a metric that
records what it computed, with a step learning-rate schedule; each training
iteration's loss is recorded by a hook. The tests compare what
:mod:`pcca_plugin.visualization.training_curves` (and ``tools/plot_curves.py``)
read from the run's logs with these records.
"""

import itertools
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner

NUM_SAMPLES = 20
BATCH_SIZE = 4
ITERATIONS_PER_EPOCH = NUM_SAMPLES // BATCH_SIZE
LOG_INTERVAL = 2
BASE_LR = 0.1
LR_MILESTONE = 2  # the lr drops after this epoch
LR_GAMMA = 0.1
METRIC_PREFIX = 'toy'
#: The metric's key in the logs.
METRIC = f'{METRIC_PREFIX}/mse'
#: mmengine names a run's timestamp folder by the second it started: a resumed run waits
#: this long so that it gets a folder of its own.
NEW_TIMESTAMP_WAIT_S = 1.1
#: Distinct experiment names: mmengine's Visualizer and MessageHub are named singletons.
_RUN_COUNTER = itertools.count()


class ToyRegressor(BaseModel):
    """``y = w . x + b`` with a mean-squared-error loss."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs, targets, mode='tensor'):
        pred = self.linear(inputs)  # (B, 1)
        if mode == 'loss':
            return dict(loss=F.mse_loss(pred, targets))
        if mode == 'predict':
            return [dict(pred=p, target=t) for p, t in zip(pred, targets)]
        return pred


class ToyMetric(BaseMetric):
    """Mean squared error of the predictions; every computed value is kept in ``history``."""

    default_prefix = METRIC_PREFIX
    history: List[float] = []

    def process(self, data_batch, data_samples: Sequence[Dict]) -> None:
        for sample in data_samples:
            self.results.append(float((sample['pred'] - sample['target']).pow(2).sum()))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        mse = sum(results) / len(results)
        ToyMetric.history.append(mse)
        return dict(mse=mse)


class RecordLosses(Hook):
    """Global iteration (from 1) -> the loss the model returned at that iteration."""

    losses: Dict[int, float] = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        RecordLosses.losses[runner.iter + 1] = outputs['loss'].item()


def toy_dataset() -> List[Dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.rand(NUM_SAMPLES, 2, generator=generator)
    targets = inputs @ torch.tensor([[2.0], [-1.0]]) + 0.5  # (N, 1)
    return [dict(inputs=x, targets=y) for x, y in zip(inputs, targets)]


def run_toy_training(
    work_dir: str,
    max_epochs: int,
    vis_backends: Optional[List[Dict]] = None,
    resume: bool = False,
) -> Runner:
    """Train the toy regressor for ``max_epochs`` with validation every epoch.

    Args:
        work_dir: the run's work dir.
        max_epochs: last epoch (with ``resume``: continue the run to it).
        vis_backends: the visualizer's backends (default: ``LocalVisBackend``).
        resume: resume from the work dir's last checkpoint.
    """
    dataset = toy_dataset()
    loader = dict(
        dataset=dataset,
        sampler=dict(type='DefaultSampler', shuffle=False),
        batch_size=BATCH_SIZE,
        collate_fn=dict(type='default_collate'),
        num_workers=0,
    )
    runner = Runner(
        model=ToyRegressor(),
        work_dir=work_dir,
        experiment_name=f'toy_run_{next(_RUN_COUNTER)}',
        train_dataloader=loader,
        val_dataloader=loader,
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs, val_interval=1),
        val_cfg=dict(),
        val_evaluator=[ToyMetric()],
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=BASE_LR)),
        param_scheduler=dict(
            type='MultiStepLR', milestones=[LR_MILESTONE], gamma=LR_GAMMA, by_epoch=True
        ),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=LOG_INTERVAL),
            checkpoint=dict(type='CheckpointHook', interval=1),
        ),
        custom_hooks=[RecordLosses()],
        # window_size=1: each logged loss is that iteration's loss, not a running mean.
        log_processor=dict(window_size=1),
        visualizer=dict(
            type='Visualizer', vis_backends=vis_backends or [dict(type='LocalVisBackend')]
        ),
        randomness=dict(seed=0),
        resume=resume,
        default_scope='mmengine',
    )
    runner.train()
    return runner


def logged_iterations(max_epochs: int, first_epoch: int = 1) -> List[int]:
    """Global iterations LoggerHook logs: every LOG_INTERVAL-th of an epoch (the last one
    only when it falls on the interval: ignore_last)."""
    return [
        (epoch - 1) * ITERATIONS_PER_EPOCH + inner
        for epoch in range(first_epoch, max_epochs + 1)
        for inner in range(1, ITERATIONS_PER_EPOCH + 1)
        if inner % LOG_INTERVAL == 0
    ]


def train_recorded(
    work_dir: str, max_epochs: int, resume: bool = False, vis_backends: Optional[List[Dict]] = None
) -> Tuple[List[float], Dict[int, float]]:
    """A toy run (:func:`run_toy_training`); returns the metric values and losses it computed.

    Returns:
        ``(metrics, losses)``: the metric value of each validation, in order, and
        global iteration -> loss.
    """
    ToyMetric.history = []
    RecordLosses.losses = {}
    run_toy_training(str(work_dir), max_epochs, vis_backends=vis_backends, resume=resume)
    return list(ToyMetric.history), dict(RecordLosses.losses)


def train_two_runs(root: str) -> Dict:
    """``root/run_a``: 3 epochs. ``root/run_b``: 2 epochs, then resumed to 4 (a new folder).

    Returns:
        ``dict(root, a=dict(metrics, losses), b=dict(metrics, losses))``: what each run
        computed (run_b's over both starts).
    """
    a_metrics, a_losses = train_recorded(osp.join(root, 'run_a'), 3)
    b_metrics, b_losses = train_recorded(osp.join(root, 'run_b'), 2)
    time.sleep(NEW_TIMESTAMP_WAIT_S)
    b2_metrics, b2_losses = train_recorded(osp.join(root, 'run_b'), 4, resume=True)
    return dict(
        root=root,
        a=dict(metrics=a_metrics, losses=a_losses),
        b=dict(metrics=b_metrics + b2_metrics, losses={**b_losses, **b2_losses}),
    )
