"""Checked pretrained loading (``init_cfg=dict(type='CheckedPretrained')``).

The checkpoints are mmaction2 recognizers, built from mmaction2's own Kinetics-400
configs (the ones whose weights the MultiSports/AVA configs download) and saved the way
mmengine saves them: ``backbone.*`` + ``cls_head.*``. Widths are reduced
(``base_channels``) so that the files are small; depth, kernels and key names are those
of the real models. Everything is offline: the unreachable URL is a closed local port.
"""

import copy
import functools
import glob
import os.path as osp
import re
import socket

import mmaction
import pytest
import torch
import torch.nn as nn
import yaml
from mmaction.registry import MODELS as ACTION_MODELS
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmengine.runner.checkpoint import save_checkpoint

from pcca_plugin.models import PretrainedWeightsError, resnet_depths
from pcca_plugin.models.pretrained import compare_shapes, select_submodule_weights
from pcca_plugin.testing import REPO_ROOT
from pcca_plugin.testing.models import TINY_PCCA

MMACTION_CONFIGS = osp.join(osp.dirname(mmaction.__file__), '.mim', 'configs')
PCCA_R101 = osp.join(
    REPO_ROOT,
    'configs',
    'pcca',
    'pcca_slowfast-r101-k400-pre_8xb4-8x8x1-12e_multisports-rgb-256x455.py',
)
RECOGNIZER_R101 = osp.join(
    MMACTION_CONFIGS, 'recognition', 'slowfast', 'slowfast_r101_8xb8-8x8x1-256e_kinetics400-rgb.py'
)
RECOGNIZER_R50 = osp.join(
    MMACTION_CONFIGS, 'recognition', 'slowfast', 'slowfast_r50_8xb8-8x8x1-256e_kinetics400-rgb.py'
)
#: Reduced widths: slow pathway 8 base channels, fast 1 (channel ratio 8 kept).
SLOW_WIDTH, FAST_WIDTH = 8, 1
OVERRIDE = '--cfg-options model.init_cfg.checkpoint=PATH'


@functools.lru_cache(maxsize=None)
def checked_configs():
    """Every config under configs/pcca whose default init_cfg is ``CheckedPretrained``."""
    found = []
    for path in sorted(glob.glob(osp.join(REPO_ROOT, 'configs', 'pcca', '*.py'))):
        init_cfg = Config.fromfile(path).model.get('init_cfg')
        if init_cfg and init_cfg.get('type') == 'CheckedPretrained':
            found.append(path)
    return tuple(found)


def narrow(backbone_cfg):
    """A copy of a SlowFast / SlowOnly backbone config with reduced widths."""
    backbone_cfg = copy.deepcopy(backbone_cfg)
    if 'slow_pathway' in backbone_cfg:
        backbone_cfg['slow_pathway']['base_channels'] = SLOW_WIDTH
        backbone_cfg['fast_pathway']['base_channels'] = FAST_WIDTH
    else:
        backbone_cfg['base_channels'] = SLOW_WIDTH
    return backbone_cfg


def save_recognizer(config_path, path, narrow_widths=True, edit=None):
    """Build mmaction2's recognizer of ``config_path`` and save it as mmengine does.

    Returns:
        The saved state dict (``backbone.*`` + ``cls_head.*``).
    """
    cfg = Config.fromfile(config_path)
    if narrow_widths:
        cfg.model.backbone = narrow(cfg.model.backbone)
        cfg.model.cls_head.in_channels = SLOW_WIDTH * 32 + FAST_WIDTH * 32
    torch.manual_seed(1)
    with DefaultScope.overwrite_default_scope('mmaction'):  # recognizers live in mmaction
        recognizer = ACTION_MODELS.build(cfg.model)
    recognizer.init_weights()
    state_dict = recognizer.state_dict()
    with torch.no_grad():  # BN statistics that differ from a fresh init
        for name, value in state_dict.items():
            if name.endswith(('running_mean', 'running_var')):
                value.uniform_(0.5, 1.5)
    if edit is not None:
        edit(state_dict)
    save_checkpoint(dict(state_dict=state_dict, meta=dict(source=osp.basename(config_path))), path)
    return state_dict


def detector(config_path, checkpoint, narrow_widths=True, **init_overrides):
    """The detector of ``config_path`` with its init_cfg pointed at ``checkpoint``."""
    cfg = Config.fromfile(config_path)
    if narrow_widths:
        cfg.model.backbone = narrow(cfg.model.backbone)
    cfg.model.init_cfg = dict(
        type='CheckedPretrained', checkpoint=checkpoint, prefix='backbone.', **init_overrides
    )
    torch.manual_seed(2)
    return MODELS.build(cfg.model)


def closed_port_url():
    """``http://127.0.0.1:<port>/...`` on a port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    return f'http://127.0.0.1:{port}/slowfast_r101_kinetics400_unreachable.pth'


@pytest.fixture(autouse=True)
def private_torch_hub(tmp_path, monkeypatch):
    """Downloads (none succeed here) go to a private cache, never the user's."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))


def test_r101_recognizer_loads_exactly_into_the_r101_config(tmp_path):
    """mmaction2's SlowFast-R101 recognizer layout fills the PCCA R101 backbone exactly."""
    path = str(tmp_path / 'r101.pth')
    saved = save_recognizer(RECOGNIZER_R101, path)
    assert any(name.startswith('cls_head.') for name in saved)
    model = detector(PCCA_R101, path)
    model.init_weights()
    loaded = model.backbone.state_dict()
    backbone_saved = {
        n[len('backbone.') :]: v for n, v in saved.items() if n.startswith('backbone.')
    }
    assert loaded.keys() == backbone_saved.keys()
    for name, value in backbone_saved.items():
        # Loaded after the backbone's own (random) init_weights, not overwritten by it.
        assert torch.equal(loaded[name], value), name
    assert resnet_depths(loaded) == {'slow_path': 101, 'fast_path': 101}


def test_r50_weights_into_the_r101_config_name_the_depths(tmp_path):
    path = str(tmp_path / 'r50.pth')
    save_recognizer(RECOGNIZER_R50, path)
    model = detector(PCCA_R101, path)
    with pytest.raises(PretrainedWeightsError) as error:
        model.init_weights()
    message = str(error.value)
    assert path in message and OVERRIDE in message
    assert 'keys of the model missing from the checkpoint' in message
    # Blocks 6-22 of res4 (layer3) exist in R101 only; they are listed.
    assert re.search(r'backbone\.(slow|fast)_path\.layer3\.(6|7|8|9|1\d|2[0-2])\.', message)
    assert "checkpoint {'slow_path': 50, 'fast_path': 50}" in message
    assert "model {'slow_path': 101, 'fast_path': 101}" in message


@pytest.fixture()
def tiny_checkpoint(tmp_path):
    """A recognizer with the tiny detector's backbone, saved; returns (path, edit->path)."""
    cfg = Config.fromfile(TINY_PCCA)

    def save(edit=None, name='tiny.pth'):
        recognizer_cfg = Config.fromfile(RECOGNIZER_R50)
        recognizer_cfg.model.backbone = cfg.model.backbone.copy()
        recognizer_cfg.model.backbone.type = 'ResNet3dSlowFast'
        recognizer_cfg.model.cls_head.in_channels = 72
        path = str(tmp_path / name)
        recognizer_cfg.dump(str(tmp_path / 'tiny_recognizer.py'))
        saved = save_recognizer(
            str(tmp_path / 'tiny_recognizer.py'), path, narrow_widths=False, edit=edit
        )
        return path, saved

    return save


def tiny_detector(checkpoint, **init_overrides):
    return detector(TINY_PCCA, checkpoint, narrow_widths=False, **init_overrides)


def test_tiny_exact_load_and_cls_head_ignored(tiny_checkpoint):
    path, saved = tiny_checkpoint()
    model = tiny_detector(path)
    model.init_weights()
    for name, value in model.backbone.state_dict().items():
        assert torch.equal(value, saved[f'backbone.{name}']), name


def test_missing_backbone_key_is_an_error(tiny_checkpoint):
    gone = 'backbone.slow_path.layer2.0.conv2.bn.running_var'
    path, _ = tiny_checkpoint(edit=lambda sd: sd.pop(gone))
    with pytest.raises(PretrainedWeightsError, match=re.escape(gone)) as error:
        tiny_detector(path).init_weights()
    assert '1 keys of the model missing from the checkpoint' in str(error.value)


def test_unexpected_backbone_key_is_an_error(tiny_checkpoint):
    extra = 'backbone.slow_path.layer5.0.conv1.conv.weight'
    path, _ = tiny_checkpoint(edit=lambda sd: sd.__setitem__(extra, torch.zeros(3)))
    with pytest.raises(PretrainedWeightsError, match=re.escape(extra)) as error:
        tiny_detector(path).init_weights()
    assert '1 checkpoint keys the model does not have' in str(error.value)


def test_wrong_shape_is_an_error_with_both_shapes(tiny_checkpoint):
    name = 'backbone.slow_path.conv1_lateral.conv.weight'

    def widen(state_dict):
        weight = state_dict[name]
        state_dict[name] = torch.zeros(weight.shape[0], weight.shape[1], 7, 1, 1)

    path, saved = tiny_checkpoint(edit=widen)
    with pytest.raises(PretrainedWeightsError) as error:
        tiny_detector(path).init_weights()
    expected_shape = tuple(
        tiny_detector(path).backbone.state_dict()[name[len('backbone.') :]].shape
    )
    assert f'{name} {tuple(saved[name].shape)} vs {expected_shape}' in str(error.value)


def test_keys_outside_the_backbone_are_unexpected_unless_ignored(tiny_checkpoint):
    path, _ = tiny_checkpoint(edit=lambda sd: sd.__setitem__('roi_head.fc.weight', torch.ones(2)))
    with pytest.raises(PretrainedWeightsError, match=r"outside 'backbone\.'.*roi_head\.fc\.weight"):
        tiny_detector(path).init_weights()
    tiny_detector(path, ignore_keys=[r'^cls_head\.', r'^roi_head\.']).init_weights()


def test_missing_file_names_the_path_and_the_override(tmp_path):
    path = str(tmp_path / 'nowhere' / 'slowfast.pth')
    with pytest.raises(PretrainedWeightsError) as error:
        tiny_detector(path).init_weights()
    assert path in str(error.value) and OVERRIDE in str(error.value)
    assert 'not found' in str(error.value)


def test_corrupt_file_names_the_path(tmp_path):
    path = tmp_path / 'corrupt.pth'
    path.write_bytes(b'not a checkpoint at all')
    with pytest.raises(PretrainedWeightsError, match=re.escape(str(path))):
        tiny_detector(str(path)).init_weights()


def test_unreachable_url_stops_a_real_runner_before_the_first_iteration(tmp_path):
    """mmengine's Runner: the error comes from init_weights, no iteration has run."""
    url = closed_port_url()

    class Net(BaseModel):
        def __init__(self):
            super().__init__(init_cfg=dict(type='CheckedPretrained', checkpoint=url))
            self.backbone = nn.Linear(2, 1)
            self.steps = 0

        def forward(self, inputs, data_samples=None, mode='tensor'):
            self.steps += 1
            return dict(loss=self.backbone(torch.stack(inputs)).sum())

    model = Net()
    runner = Runner(
        model=model,
        work_dir=str(tmp_path / 'work'),
        train_dataloader=dict(
            dataset=[torch.zeros(2)] * 4,
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            collate_fn=dict(type='default_collate'),
        ),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        default_hooks=dict(checkpoint=None),
    )
    with pytest.raises(PretrainedWeightsError) as error:
        runner.train()
    message = str(error.value)
    assert url in message and OVERRIDE in message and 'could not download' in message
    assert model.steps == 0 and runner.iter == 0


def test_every_default_checkpoint_is_mmaction2s_published_recognizer():
    """URL = the metafile's ``Weights`` of the recognizer whose folder the URL names."""
    weights = {}
    for metafile in glob.glob(osp.join(MMACTION_CONFIGS, 'recognition', '*', 'metafile.yml')):
        with open(metafile) as f:
            for entry in yaml.safe_load(f)['Models']:
                weights[entry['Weights']] = osp.join(
                    MMACTION_CONFIGS, osp.relpath(entry['Config'], 'configs')
                )
    configs = checked_configs()
    assert len(configs) >= 6
    for path in configs:
        url = Config.fromfile(path).model.init_cfg.checkpoint
        if 'k600' in osp.basename(path):
            assert not url.startswith('http')  # the converted Kinetics-600 file
            continue
        assert url in weights, f'{osp.basename(path)}: {url} is not in mmaction2 metafiles'
        assert osp.isfile(weights[url])


@pytest.mark.parametrize(
    'path', [p for p in checked_configs() if 'k600' not in osp.basename(p)], ids=osp.basename
)
def test_default_recognizer_fits_each_config_exactly(path):
    """Full-width shapes, on the meta device: the downloaded weights would load."""
    url = Config.fromfile(path).model.init_cfg.checkpoint
    family, name = url.split('/recognition/')[1].split('/')[:2]
    recognizer_cfg = Config.fromfile(
        osp.join(MMACTION_CONFIGS, 'recognition', family, f'{name}.py')
    )
    recognizer_cfg.model.backbone.pop('pretrained', None)
    cfg = Config.fromfile(path)
    with torch.device('meta'), DefaultScope.overwrite_default_scope('mmaction'):
        recognizer = ACTION_MODELS.build(recognizer_cfg.model)
        backbone = MODELS.build(cfg.model.backbone)
    given, ignored, foreign = select_submodule_weights(
        recognizer.state_dict(), 'backbone.', cfg.model.init_cfg.ignore_keys
    )
    assert ignored and not foreign
    expected = {f'backbone.{n}': v.shape for n, v in backbone.state_dict().items()}
    missing, unexpected, wrong = compare_shapes(expected, {n: v.shape for n, v in given.items()})
    assert (missing, unexpected, wrong) == ([], [], [])


def test_metafile_names_each_configs_pretrained_checkpoint():
    with open(osp.join(REPO_ROOT, 'configs', 'pcca', 'metafile.yml')) as f:
        meta = yaml.safe_load(f)
    by_name = {model['Name']: model for model in meta['Models']}
    for path in checked_configs():
        entry = by_name[osp.splitext(osp.basename(path))[0]]
        assert (
            entry['Metadata']['Pretrained Checkpoint']
            == Config.fromfile(path).model.init_cfg.checkpoint
        )
