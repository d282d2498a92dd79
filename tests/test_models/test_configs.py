"""Every PCCA config loads completely, builds, and the tiny ones run loss + predict."""

import glob
import os

import mmaction
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config

from pcca_plugin.models import PCCABBoxHead, PCCARoIHead, check_config_consistency
from pcca_plugin.testing import REPO_ROOT
from pcca_plugin.testing.models import build_model, clips, make_sample

PCCA_CONFIGS = sorted(glob.glob(os.path.join(REPO_ROOT, 'configs', 'pcca', '*.py')))
MODEL_BASES = sorted(glob.glob(os.path.join(REPO_ROOT, 'configs', '_base_', 'models', '*.py')))
TINY = [path for path in PCCA_CONFIGS if 'tiny' in os.path.basename(path)]
STOCK_MULTISPORTS = os.path.join(
    os.path.dirname(mmaction.__file__),
    '.mim',
    'configs',
    'detection',
    'slowfast',
    'slowfast_kinetics400-pretrained-r50_8xb16-4x16x1-8e_multisports-rgb.py',
)
#: Phase-1 config -> its decoupled phase 2, for every model the paper submits.
PHASE2 = {
    'pcca_slowfast-r101-k400-pre_8xb4-8x8x1-12e_multisports-rgb-256x455.py': (
        'pcca-decoupled_slowfast-r101-k400-pre_8xb4-8x8x1-2e-cb_multisports-rgb-256x455.py'
    ),
    'pcca_slowfast-r101-k400-pre_8xb3-8x8x1-12e_multisports-rgb-360x640.py': (
        'pcca-decoupled_slowfast-r101-k400-pre_8xb3-8x8x1-2e-cb_multisports-rgb-360x640.py'
    ),
    'pcca_slowfast-r101-k400-pre_8xb4-8x8x1-train+val-15e_multisports-rgb-256x455.py': (
        'pcca-decoupled_slowfast-r101-k400-pre_8xb4-8x8x1-train+val-2e-cb_multisports-rgb-256x455.py'
    ),
}
#: Paper section 3.1.
PAPER_SCHEDULE = dict(lr=0.1, momentum=0.9, weight_decay=1e-4, milestones=[5, 8, 10])


def config_id(path):
    return os.path.basename(path)


def test_expected_configs_exist():
    names = [config_id(path) for path in PCCA_CONFIGS]
    for needed in (
        'pcca_slowfast-r101-k400-pre_8xb4-8x8x1-12e_multisports-rgb-256x455.py',
        'linear_slowfast-r101-k400-pre_8xb4-8x8x1-12e_multisports-rgb-256x455.py',
        'pcca_slowfast-r101-k400-pre_8xb3-8x8x1-12e_multisports-rgb-360x640.py',
        'pcca_slowfast-r101-k600-pre_8xb4-8x8x1-12e_multisports-rgb-256x455.py',
        *PHASE2.values(),
    ):
        assert needed in names
    assert len(TINY) >= 2


@pytest.mark.parametrize('path', PCCA_CONFIGS + MODEL_BASES, ids=config_id)
def test_config_loads_and_model_builds(path):
    cfg = Config.fromfile(path)
    check_config_consistency(cfg)
    model = MODELS.build(cfg.model)
    head = model.roi_head
    if 'pcca' in config_id(path):
        assert isinstance(head, PCCARoIHead) and isinstance(head.bbox_head, PCCABBoxHead)
    if 'train_dataloader' in cfg:
        dataset = cfg.train_dataloader.dataset
        classes = dataset.get('num_classes', dataset.get('datasets', [{}])[0].get('num_classes'))
        if classes is not None:
            assert head.bbox_head.num_classes == classes


@pytest.mark.parametrize(
    'path', [p for p in PCCA_CONFIGS if 'r101' in p and 'decoupled' not in p], ids=config_id
)
def test_paper_schedule_and_backbone(path):
    cfg = Config.fromfile(path)
    optimizer = cfg.optim_wrapper.optimizer
    assert (
        optimizer.type,
        optimizer.lr,
        optimizer.momentum,
        optimizer.nesterov,
        optimizer.weight_decay,
    ) == (
        'SGD',
        PAPER_SCHEDULE['lr'],
        PAPER_SCHEDULE['momentum'],
        True,
        PAPER_SCHEDULE['weight_decay'],
    )
    warmup, steps = cfg.param_scheduler
    assert warmup.type == 'LinearLR' and warmup.end == 3
    assert steps.milestones == PAPER_SCHEDULE['milestones'] and steps.gamma == 0.1
    epochs = 15 if 'train+val' in path else 12
    assert cfg.train_cfg.max_epochs == epochs
    batch = 24 if '360x640' in path else 32
    assert 8 * cfg.train_dataloader.batch_size == batch == cfg.auto_scale_lr.base_batch_size
    backbone = cfg.model.backbone
    assert (backbone.resample_rate, backbone.speed_ratio) == (4, 4)
    for pathway in (backbone.slow_pathway, backbone.fast_pathway):
        assert pathway.depth == 101
        assert tuple(pathway.spatial_strides)[-1] == 1 and tuple(pathway.dilations)[-1] == 2


@pytest.mark.parametrize('path', TINY, ids=config_id)
def test_tiny_config_runs_loss_and_predict(path):
    cfg = Config.fromfile(path)
    num_classes = cfg.model.roi_head.bbox_head.num_classes
    model = build_model(path)
    samples = [
        make_sample(
            [[4, 6, 30, 60], [50, 10, 80, 62]], [[4, 6, 30, 60]], [[1, 2]], num_classes=num_classes
        ),
        make_sample(
            [[20, 2, 44, 50]], [[20, 2, 44, 50]], [[num_classes - 1]], num_classes=num_classes
        ),
    ]
    data = model.data_preprocessor(dict(inputs=clips(2), data_samples=samples), True)
    losses = model(**data, mode='loss')
    assert torch.isfinite(losses['loss_action_cls']) and losses['loss_action_cls'] > 0
    model.eval()
    with torch.no_grad():
        test = model.data_preprocessor(
            dict(inputs=clips(1), data_samples=[make_sample([[4, 6, 30, 60]])]), False
        )
        pred = model(**test, mode='predict')[0].pred_instances
    assert pred.scores.shape == (1, num_classes)
    assert pred.bboxes.shape == (1, 4)


def test_stock_multisports_config_with_pcca_head():
    """mmaction2's own MultiSports SlowFast config with only the RoI head swapped."""
    cfg = Config.fromfile(STOCK_MULTISPORTS)
    num_classes = cfg.num_classes
    cfg.model.roi_head = dict(
        type='PCCARoIHead',
        num_classes=num_classes,
        bbox_roi_extractor=dict(type='ContextRoIExtractor', in_channels=2304),
        bbox_head=dict(
            type='PCCABBoxHead',
            in_channels=2304,
            num_classes=num_classes,
            multilabel=False,
            embed_dims=64,
            num_layers=1,
            num_heads=2,
        ),
    )
    cfg.model.init_cfg = None
    check_config_consistency(cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    samples = [make_sample([[4, 6, 30, 60]], [[4, 6, 30, 60]], [[3]], num_classes=num_classes)]
    data = model.data_preprocessor(dict(inputs=clips(1), data_samples=samples), True)
    losses = model(**data, mode='loss')
    assert torch.isfinite(losses['loss_action_cls'])
    cfg.model.roi_head.bbox_head.num_classes = num_classes + 1
    with pytest.raises(
        ValueError, match=f'num_classes={num_classes}.*num_classes={num_classes + 1}'
    ):
        MODELS.build(cfg.model)


def test_metafile_lists_every_config():
    import yaml

    with open(os.path.join(REPO_ROOT, 'configs', 'pcca', 'metafile.yml')) as f:
        meta = yaml.safe_load(f)
    listed = sorted(os.path.basename(model['Config']) for model in meta['Models'])
    assert listed == sorted(config_id(path) for path in PCCA_CONFIGS)


def phase2_schedule(cfg):
    """What phase 2 changes: hooks, wrapper, epochs, optimizer, lr schedule, sampler."""
    optim = cfg.optim_wrapper
    return dict(
        hooks=cfg.custom_hooks,
        wrapper=cfg.model_wrapper_cfg,
        loop=(cfg.train_cfg.type, cfg.train_cfg.max_epochs),
        optimizer=optim.optimizer,
        clip_grad=optim.clip_grad,
        param_scheduler=cfg.param_scheduler,
        sampler=cfg.train_dataloader.sampler,
    )


@pytest.mark.parametrize('phase1', sorted(PHASE2), ids=config_id)
def test_each_submitted_model_has_its_phase2_config(phase1):
    """Phase 2 = phase 1's model and data with ../_base_/schedules/decoupled_phase2.py."""
    first = Config.fromfile(os.path.join(REPO_ROOT, 'configs', 'pcca', phase1))
    second = Config.fromfile(os.path.join(REPO_ROOT, 'configs', 'pcca', PHASE2[phase1]))
    reference = Config.fromfile(
        os.path.join(REPO_ROOT, 'configs', '_base_', 'schedules', 'decoupled_phase2.py')
    )
    reference.train_dataloader = dict(sampler=reference.phase2_sampler)
    expected = phase2_schedule(reference)
    expected['sampler'] = {k: v for k, v in expected['sampler'].items() if k != '_delete_'}
    assert phase2_schedule(second) == expected
    assert second.train_dataloader.sampler.type == 'ClassBalancedSampler'
    # The model, the data and the validation rhythm are phase 1's; weights from phase 1.
    assert second.model.get('init_cfg') is None
    first.model.pop('init_cfg')
    second.model.pop('init_cfg', None)
    assert second.model == first.model
    assert second.train_dataloader.dataset == first.train_dataloader.dataset
    assert second.train_dataloader.batch_size == first.train_dataloader.batch_size
    assert second.train_cfg.val_interval == first.train_cfg.val_interval
    run = os.path.splitext(phase1)[0]
    assert second.load_from == f'work_dirs/{run}/epoch_{first.train_cfg.max_epochs}.pth'


def test_metafile_keeps_the_papers_figures_out_of_results():
    """``Results`` is for figures these configs produced; the paper's are ``Paper Results``."""
    import yaml

    with open(os.path.join(REPO_ROOT, 'configs', 'pcca', 'metafile.yml')) as f:
        meta = yaml.safe_load(f)
    paper_f05 = set()
    for model in meta['Models']:
        for result in model.get('Results', []):
            assert 'paper' not in str(result.get('Notes', '')).lower(), model['Name']
        for result in model.get('Paper Results', []):
            assert 'reported in the paper' in result['Notes'], model['Name']
            assert 'not produced by this config' in result['Notes'], model['Name']
            # ... and scored by the 2021 challenge server's evaluation, which says how to compare.
            assert 'server2021' in result['Notes'], model['Name']
            paper_f05.add(result['Metrics']['frame-mAP@0.5'])
    # Table 1 of the paper, val set: linear, PCCA, PCCA decoupled, PCCA 360x640.
    assert paper_f05 == {29.03, 39.48, 42.21, 41.6}
