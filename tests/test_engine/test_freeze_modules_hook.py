"""FreezeModulesHook with a real mmengine Runner: the frozen backbone does not move at all."""

import glob

import pytest
import torch
from mmengine.runner import Runner

from pcca_plugin.engine import FreezeModulesHook

from .test_freeze_hook import CLASSIFIER, LongTailFeatures, TinyDetector


def _train(tmp_path, hook_cfg):
    torch.manual_seed(0)
    model = TinyDetector()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    runner = Runner(
        model=model,
        work_dir=str(tmp_path / 'work'),
        train_dataloader=dict(
            batch_size=8,
            dataset=LongTailFeatures(),
            sampler=dict(type='DefaultSampler', shuffle=True),
        ),
        train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4)),
        custom_hooks=[hook_cfg],
        default_scope='mmaction',
        randomness=dict(seed=0),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=100)),
    )
    runner.train()
    return model, before, runner


def test_frozen_backbone_keeps_weights_and_statistics_while_the_head_trains(tmp_path):
    model, before, runner = _train(tmp_path, dict(type='FreezeModulesHook', modules=['backbone']))
    assert runner.iter >= 4
    after = model.state_dict()
    for name, tensor in before.items():
        if name.startswith('backbone.'):  # weights and BN buffers (running stats, counter)
            assert torch.equal(after[name], tensor), f'{name} moved'
    assert not torch.equal(after[CLASSIFIER + '.weight'], before[CLASSIFIER + '.weight'])
    # Every training forward saw the backbone's BN and dropout in eval mode, the head's
    # dropout in train mode (mmengine calls model.train() at each epoch start).
    assert model.frozen_modes_seen
    assert all(not bn and not drop and head for bn, drop, head in model.frozen_modes_seen)
    assert all(not p.requires_grad for p in model.backbone.parameters())
    frozen = sum(p.numel() for p in model.backbone.parameters())
    total = sum(p.numel() for p in model.parameters())
    log = ''.join(open(f).read() for f in glob.glob(str(tmp_path / 'work' / '*' / '*.log')))
    assert f'FreezeModulesHook: {frozen} of {total} parameters frozen' in log


def test_without_the_hook_the_backbone_trains(tmp_path):
    """The control: the same run with a do-nothing hook list moves the backbone."""
    model, before, _ = _train(tmp_path, dict(type='FreezeModulesHook', modules=['roi_head']))
    after = model.state_dict()
    assert not torch.equal(after['backbone.0.weight'], before['backbone.0.weight'])
    assert torch.equal(after[CLASSIFIER + '.weight'], before[CLASSIFIER + '.weight'])


def test_bad_module_lists_fail_clearly():
    with pytest.raises(ValueError, match="modules=\\['backbone'\\]"):
        FreezeModulesHook(modules='backbone')
    with pytest.raises(ValueError, match='non-empty'):
        FreezeModulesHook(modules=[])

    class FakeRunner:
        model = TinyDetector()

    hook = FreezeModulesHook(modules=['neck'])
    with pytest.raises(AttributeError, match=r"'neck'.*'backbone', 'roi_head'\]"):
        hook.before_train(FakeRunner())


def test_ddp_without_find_unused_parameters_is_refused_with_the_fix(tmp_path):
    """Both freezing hooks freeze after the Runner's DDP wrap: they refuse a wrapper that
    would wait for the frozen gradients, and accept one with find_unused_parameters."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from pcca_plugin.engine import FreezeAllButClassifierHook

    dist.init_process_group(
        'gloo', init_method=f'file://{tmp_path / "rendezvous"}', rank=0, world_size=1
    )
    try:
        for hook in (FreezeModulesHook(), FreezeAllButClassifierHook()):
            runner = type('FakeRunner', (), {})()
            runner.model = DistributedDataParallel(TinyDetector())
            with pytest.raises(RuntimeError, match='find_unused_parameters=True'):
                hook.before_train(runner)
            runner.model = DistributedDataParallel(TinyDetector(), find_unused_parameters=True)
            runner.logger = type('Logger', (), {'info': staticmethod(lambda message: None)})()
            hook.before_train(runner)
            assert not all(p.requires_grad for p in runner.model.module.parameters())
    finally:
        dist.destroy_process_group()
