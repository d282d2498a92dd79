"""ProgressBarHook in a real mmengine Runner: a bar per training / test run, resume-aware."""

import io

import torch
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

from pcca_plugin.engine import ProgressBarHook

NUM_SAMPLES, BATCH = 40, 2  # 20 iterations an epoch


class TinyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, inputs, labels, mode='tensor'):
        logits = self.fc(inputs)  # (B, 4) -> (B, 2)
        if mode == 'loss':
            return {'loss': nn.functional.cross_entropy(logits, labels)}
        return [dict(logits=row) for row in logits]


class CountMetric(BaseMetric):
    def process(self, data_batch, data_samples):
        self.results.extend(data_samples)

    def compute_metrics(self, results):
        return dict(count=len(results))


class TerminalStream(io.StringIO):
    def isatty(self):
        return True


def make_runner(work_dir, stream, max_epochs=2, resume=False):
    generator = torch.Generator().manual_seed(0)
    dataset = [
        dict(inputs=torch.randn(4, generator=generator), labels=torch.tensor(i % 2))
        for i in range(NUM_SAMPLES)
    ]
    loader = dict(
        dataset=dataset,
        sampler=dict(type='DefaultSampler', shuffle=False),
        batch_size=BATCH,
        collate_fn=dict(type='default_collate'),
    )
    return Runner(
        model=TinyModel(),
        work_dir=str(work_dir),
        train_dataloader=loader,
        test_dataloader=loader,
        test_evaluator=CountMetric(),
        test_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        custom_hooks=[ProgressBarHook(title='[toy]', bar_width=10, stream=stream)],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        resume=resume,
        default_scope='mmaction',  # the plugin's scope, as in its configs
    )


def test_log_file_gets_a_line_per_tenth_of_training_and_of_testing(tmp_path):
    stream = io.StringIO()
    runner = make_runner(tmp_path, stream)
    runner.train()
    runner.test()
    lines = stream.getvalue().splitlines()
    train = [line for line in lines if line.startswith('[toy] train')]
    test = [line for line in lines if line.startswith('[toy] test')]
    assert len(train) == 10 and len(test) == 10, lines
    assert '40/40 (100%)' in train[-1] and '4/40 ( 10%)' in train[0]
    assert '20/20 (100%)' in test[-1]
    assert all('elapsed' in line and 'ETA' in line for line in lines)


def test_terminal_bar_redraws_in_place(tmp_path):
    stream = TerminalStream()
    make_runner(tmp_path, stream, max_epochs=1).train()
    text = stream.getvalue()
    assert text.count('\r') == 20 and text.endswith('\n')
    assert '[##########] 20/20' in text.split('\r')[-1]


def test_resumed_training_counts_only_the_iterations_left(tmp_path):
    make_runner(tmp_path, io.StringIO(), max_epochs=1).train()
    stream = io.StringIO()
    make_runner(tmp_path, stream, max_epochs=2, resume=True).train()
    lines = stream.getvalue().splitlines()
    assert lines[-1].startswith('[toy] train') and '20/20 (100%)' in lines[-1], lines
