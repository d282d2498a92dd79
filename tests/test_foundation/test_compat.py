"""Each trap of the pinned stack is fixed by pcca_plugin.compat, on plain PyPI installs."""

import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

from pcca_plugin import compat


def run_python(code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, '-c', textwrap.dedent(code)], capture_output=True, text=True, cwd=cwd
    )


def test_mmaction_models_import_after_plugin_and_drn_placeholder_explains():
    import mmaction.models  # noqa: F401  (fails on the 1.2.0 wheel without the fix)
    from mmaction.registry import MODELS

    drn = MODELS.get('DRN')
    with pytest.raises(ImportError, match='not part of the mmaction2 1.2.0 wheel'):
        drn()


def test_mmaction_models_import_fails_without_plugin(tmp_path):
    """Documents the trap: without pcca_plugin the plain wheel cannot import."""
    result = run_python('import mmaction.models', tmp_path)
    assert result.returncode != 0
    assert 'drn' in result.stderr


def test_importlib_metadata_alias_when_backport_missing(tmp_path):
    result = run_python(
        """
        import importlib.abc, sys
        class Hide(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == 'importlib_metadata':
                    raise ModuleNotFoundError(name)
        sys.meta_path.insert(0, Hide())
        import importlib.metadata
        import pcca_plugin  # applies the fix on import
        assert sys.modules['importlib_metadata'] is importlib.metadata
        assert 'fix_mmaction_importlib_metadata' in pcca_plugin.compat.apply_all()
        import mmaction.utils.dependency  # does `from importlib_metadata import ...`
        print('ok')
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'ok'


def test_apply_all_is_idempotent():
    before = len(sys.meta_path)
    compat.apply_all()
    compat.apply_all()
    assert len(sys.meta_path) == before


class TinyModel(BaseModel):
    """Smallest mmengine model: a linear layer with BN and a classification loss."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.bn = nn.BatchNorm1d(2)

    def forward(self, inputs, labels, mode='tensor'):
        logits = self.bn(self.fc(inputs))  # (B, 4) -> (B, 2)
        if mode == 'loss':
            return {'loss': nn.functional.cross_entropy(logits, labels)}
        return logits


def make_runner(work_dir, max_iters, **kwargs) -> Runner:
    """A real mmengine Runner on 16 random samples, checkpointing every 2 iterations."""
    generator = torch.Generator().manual_seed(0)
    dataset = [
        dict(inputs=torch.randn(4, generator=generator), labels=torch.tensor(i % 2))
        for i in range(16)
    ]
    torch.manual_seed(0)  # same initial weights in every runner
    model = TinyModel()
    return Runner(
        model=model,
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=dataset,
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=4,
            collate_fn=dict(type='default_collate'),
        ),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=dict(type='MultiStepLR', by_epoch=False, milestones=[3], begin=0, end=4),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False)),
        randomness=dict(seed=0),
        default_scope='mmengine',
        **kwargs,
    )


def test_runner_save_resume_and_load_from_under_weights_only_default(tmp_path):
    first = make_runner(tmp_path / 'a', max_iters=2)
    first.train()
    checkpoint = tmp_path / 'a' / 'iter_2.pth'
    assert checkpoint.is_file()

    # torch's own default (weights_only=True) reads mmengine's checkpoint.
    state = torch.load(checkpoint)
    assert 'message_hub' in state and state['meta']['iter'] == 2

    resumed = make_runner(tmp_path / 'a', max_iters=4, resume=True)
    resumed.train()
    assert resumed.iter == 4
    # Resuming restored weights, optimizer, scheduler and data order: it ends
    # exactly where an uninterrupted 4-iteration run ends.
    uninterrupted = make_runner(tmp_path / 'c', max_iters=4)
    uninterrupted.train()
    for name, value in uninterrupted.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value, msg=name)

    loaded = make_runner(tmp_path / 'b', max_iters=1, load_from=str(checkpoint))
    loaded.train()
    assert loaded.iter == 1  # load_from restores weights only, not the iteration


def test_checkpoint_needs_the_allow_list(tmp_path):
    """Without pcca_plugin, torch >= 2.6 refuses the same checkpoint: the fix is real."""
    runner = make_runner(tmp_path, max_iters=2)
    runner.train()
    result = run_python(
        f"""
        import torch
        torch.load({str(tmp_path / 'iter_2.pth')!r})
        """,
        tmp_path,
    )
    assert result.returncode != 0
    assert 'weights_only' in result.stderr
