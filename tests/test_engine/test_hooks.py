"""The hooks of ``pcca_plugin/engine/hooks.py`` with a real mmengine Runner.

* decoupled phase 2 (``FreezeAllButClassifierHook``): only the classifier changes;
* ``FreezeModulesHook``: the frozen backbone does not move at all;
* ``ProgressBarHook``: a bar per training / test run, resume-aware.
"""

import glob
import io
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

from pcca_plugin.engine import FreezeModulesHook, ProgressBarHook, freeze_all_but

NUM_FEATURES, HIDDEN, NUM_CLASSES = 4, 8, 3
CLASSIFIER = 'roi_head.bbox_head.fc_cls'
#: 50:1 long tail of single-label samples.
CLASS_SIZES = (50, 10, 1)


class TinyDetector(BaseModel):
    """BatchNorm + dropout 'backbone' and a head whose classifier is named like BBoxHeadAVA's."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Linear(NUM_FEATURES, HIDDEN), nn.BatchNorm1d(HIDDEN), nn.ReLU(), nn.Dropout(0.5)
        )
        self.roi_head = nn.Module()
        self.roi_head.bbox_head = nn.Module()
        self.roi_head.bbox_head.dropout = nn.Dropout(0.5)
        self.roi_head.bbox_head.fc_cls = nn.Linear(HIDDEN, NUM_CLASSES)
        #: ``training`` flags of the frozen BN / dropout seen in each training forward.
        self.frozen_modes_seen = []

    def forward(self, inputs, data_samples=None, mode='tensor'):
        features = self.backbone(torch.stack(inputs))  # (B, HIDDEN)
        logits = self.roi_head.bbox_head.fc_cls(self.roi_head.bbox_head.dropout(features))
        if mode == 'loss':
            self.frozen_modes_seen.append(
                (
                    self.backbone[1].training,
                    self.backbone[3].training,
                    self.roi_head.bbox_head.dropout.training,
                )
            )
            return dict(
                loss_cls=F.binary_cross_entropy_with_logits(logits, torch.stack(data_samples))
            )
        return logits


class LongTailFeatures:
    """Random features with one-hot targets; ``get_cat_ids`` for the balanced sampler."""

    def __init__(self):
        generator = torch.Generator().manual_seed(0)
        self.labels = [c for c, size in enumerate(CLASS_SIZES) for _ in range(size)]
        self.features = torch.randn(len(self.labels), NUM_FEATURES, generator=generator)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, idx):
        target = F.one_hot(torch.tensor(self.labels[idx]), NUM_CLASSES).float()
        return dict(inputs=self.features[idx], data_samples=target)

    def get_cat_ids(self, idx):
        return [self.labels[idx]]


def _phase1_checkpoint(path):
    """A 'phase-1' model whose BN statistics moved away from their initial values."""
    torch.manual_seed(0)
    model = TinyDetector().train()
    with torch.no_grad():
        for _ in range(3):
            model.backbone(torch.randn(16, NUM_FEATURES) * 3 + 1)
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return {k: v.clone() for k, v in model.state_dict().items()}


def _phase2_config(tmp_path, repo_root):
    """A phase-2 leaf config built the documented way on the toy dataset base."""
    leaf = tmp_path / 'phase2.py'
    bases = [
        osp.join(repo_root, 'configs/_base_/datasets/toy-sports_rgb.py'),
        osp.join(repo_root, 'configs/_base_/schedules/decoupled_phase2.py'),
    ]
    leaf.write_text(
        f'_base_ = {bases!r}\n'
        'train_dataloader = dict(batch_size=8, sampler={{_base_.phase2_sampler}})\n'
    )
    return Config.fromfile(str(leaf))


def test_phase2_changes_only_the_classifier(tmp_path, repo_root):
    cfg = _phase2_config(tmp_path, repo_root)
    assert cfg.train_dataloader.sampler == dict(type='ClassBalancedSampler', num_samples=None)
    assert cfg.custom_hooks[0].classifier_path == CLASSIFIER

    checkpoint = str(tmp_path / 'phase1.pth')
    before = _phase1_checkpoint(checkpoint)
    train_dataloader = dict(cfg.train_dataloader, dataset=LongTailFeatures())
    model = TinyDetector()
    runner = Runner(
        model=model,
        work_dir=str(tmp_path / 'work'),
        train_dataloader=train_dataloader,
        train_cfg=cfg.train_cfg,
        optim_wrapper=cfg.optim_wrapper,
        param_scheduler=cfg.param_scheduler,
        custom_hooks=cfg.custom_hooks,
        load_from=checkpoint,
        default_scope='mmaction',
        randomness=dict(seed=0),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=100)),
    )
    runner.train()

    iterations = runner.iter
    assert iterations >= 4, iterations
    assert model.frozen_modes_seen and not any(
        bn or dropout or head_dropout for bn, dropout, head_dropout in model.frozen_modes_seen
    )
    after = model.state_dict()
    for name, tensor in before.items():
        if name.startswith(CLASSIFIER + '.'):
            assert not torch.equal(after[name], tensor), f'{name} did not change'
        else:  # parameters and BN buffers (running stats, num_batches_tracked)
            assert torch.equal(after[name], tensor), f'{name} changed in phase 2'
    assert before['backbone.1.num_batches_tracked'].item() == 3  # checkpoint really loaded

    trainable = sum(p.numel() for p in model.roi_head.bbox_head.fc_cls.parameters())
    total = sum(p.numel() for p in model.parameters())
    log_files = glob.glob(str(tmp_path / 'work' / '*' / '*.log'))
    log = ''.join(open(f).read() for f in log_files)
    assert f'{trainable} of {total} parameters trainable' in log


def test_missing_classifier_fails_clearly():
    model = TinyDetector()
    with pytest.raises(AttributeError, match=r"'roi_head.bbox_head.fc_logits'.*fc_cls"):
        freeze_all_but(model, 'roi_head.bbox_head.fc_logits')
    trainable, total = freeze_all_but(model, CLASSIFIER)
    assert trainable == HIDDEN * NUM_CLASSES + NUM_CLASSES
    assert total == sum(p.numel() for p in model.parameters())
    assert not model.backbone[1].training and model.roi_head.bbox_head.fc_cls.training
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        CLASSIFIER + '.weight',
        CLASSIFIER + '.bias',
    ]


#: The real phase-2 config of the tiny PCCA detector (FastRCNN + SlowFast + PCCA head).
TOY_PHASE2_CONFIG = 'configs/pcca/pcca-decoupled_slowfast-tiny_1xb8-8x1x1-2e-cb_toy-sports-rgb.py'
TOY_SIZES = dict(
    num_train_videos=3,
    num_val_videos=1,
    num_frames=10,
    head_tube_len=(5, 8),
    tail_tubes=dict(train=1, val=0),
)


def test_phase2_of_the_real_tiny_detector(tmp_path, repo_root):
    """Two iterations of the real phase-2 config: only ``fc_cls`` moves, BN stats do not."""
    data_root = str(tmp_path / 'toy')
    from pcca_plugin.datasets.toy_sports import make_toy_sports

    make_toy_sports(data_root, seed=1, **TOY_SIZES)
    cfg = Config.fromfile(osp.join(repo_root, TOY_PHASE2_CONFIG))
    dataset = cfg.train_dataloader.dataset
    for key in ('ann_file', 'proposal_file'):
        dataset[key] = dataset[key].replace('data/toy_sports', data_root)
    dataset.data_prefix = dict(img=osp.join(data_root, 'rawframes'))
    cfg.train_dataloader.sampler.num_samples = 2 * cfg.train_dataloader.batch_size
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1)
    for key in (
        'val_dataloader',
        'val_cfg',
        'val_evaluator',
        'test_dataloader',
        'test_cfg',
        'test_evaluator',
        'param_scheduler',
    ):
        cfg[key] = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=100)
    cfg.work_dir = str(tmp_path / 'work')

    # Phase-1 stand-in: a model whose BN statistics moved in a train-mode forward.
    cfg.load_from = None
    runner = Runner.from_cfg(cfg)
    model = runner.model.train()
    batch = next(iter(runner.build_dataloader(cfg.train_dataloader)))
    with torch.no_grad():
        model(**model.data_preprocessor(batch, True), mode='loss')
    checkpoint = str(tmp_path / 'phase1.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), checkpoint)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert any('running_mean' in k for k in before)

    cfg.load_from = checkpoint
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    after = runner.model.state_dict()
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    assert changed == [CLASSIFIER + '.bias', CLASSIFIER + '.weight']


# --- FreezeModulesHook -------------------------------------------------------------------


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


# --- ProgressBarHook ---------------------------------------------------------------------


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
