"""The SlowFast weight conversion (``tools/convert_slowfast_weights.py``), proven exact
against pytorchvideo's own SlowFast.

pytorchvideo 0.1.5 (in the ``tests`` extra) builds the reference networks with random
weights and random BatchNorm statistics; :mod:`pcca_plugin.models.weight_conversion`
converts their state dicts (as
pytorchvideo hub ``.pyth`` files, and renamed to PySlowFast's ``.pyth`` names and Caffe2
``.pkl`` blob names), mmaction2's ``ResNet3dSlowFast`` loads them, and both pathway
outputs must agree with pytorchvideo's on the same clip to 1e-4 of the feature scale.

A stub, said plainly: ``pytorchvideo.models`` imports ``torchvision.ops.RoIAlign`` at
module level (for its detection head, which SlowFast never calls), and the PyPI
torchvision wheel does not load with the CPU torch of this environment. When
``torchvision.ops`` cannot be imported, this module puts a minimal ``torchvision`` /
``torchvision.ops`` stub in ``sys.modules`` while it imports pytorchvideo, and removes it
afterwards; the stub's ``RoIAlign`` raises if anything builds it.
"""

import importlib
import os
import os.path as osp
import re
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmaction.registry import MODELS as ACTION_MODELS
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.model import initialize
from mmengine.registry import DefaultScope

from pcca_plugin.models import PretrainedWeightsError
from pcca_plugin.models.weight_conversion import (
    ConversionError,
    conversion_report,
    convert_slowfast_checkpoint,
    write_converted_checkpoint,
)
from pcca_plugin.testing import repo_path, run_tool
from pcca_plugin.utils.pickle_io import dumps_pickle

MODEL_BASE = repo_path('configs', '_base_', 'models', 'slowfast-r101_pcca.py')
K600_CONFIG = repo_path(
    'configs',
    'pcca',
    'pcca_slowfast-r101-k600-pre_8xb4-8x8x1-12e_multisports-rgb-256x455.py',
)
ALPHA = 4  # SlowFast 8x8: the slow pathway sees every 4th frame
#: A tiny clip: (N, C, T, H, W); the slow pathway gets T / ALPHA = 2 frames.
CLIP_SHAPE = (1, 3, 8, 64, 64)
#: Narrow networks for the fast cases: stem widths 16 (slow) and 2 (fast), ratio 8.
NARROW_STEMS = (16, 2)
TOLERANCE = 1e-4  # of the feature scale (max |feature|), float32
RES5_DILATED = dict(
    stage_spatial_strides=((1, 2, 2, 1), (1, 2, 2, 1)),
    stage_conv_b_dilations=(((1, 1, 1), (1, 1, 1), (1, 1, 1), (1, 2, 2)),) * 2,
)


class _RoIAlignStub(nn.Module):
    def __init__(self, *args, **kwargs):
        raise RuntimeError('torchvision.ops stub (test_convert_slowfast_weights): not usable')


@pytest.fixture(scope='module')
def create_slowfast():
    """pytorchvideo's ``create_slowfast``, imported with a torchvision stub if needed."""
    stubbed = {}
    try:
        importlib.import_module('torchvision.ops')
    except Exception:
        torchvision = types.ModuleType('torchvision')
        ops = types.ModuleType('torchvision.ops')
        ops.RoIAlign = _RoIAlignStub
        torchvision.ops = ops
        torchvision.__path__ = []
        for name, module in (('torchvision', torchvision), ('torchvision.ops', ops)):
            stubbed[name] = sys.modules.get(name)
            sys.modules[name] = module
    try:
        from pytorchvideo.models.slowfast import create_slowfast as builder

        yield builder
    finally:
        for name, previous in stubbed.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous


def randomise_batchnorm(model, seed):
    """Random affine parameters and running statistics, so that BN is not the identity."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm3d):
                size = module.num_features
                module.weight.copy_(torch.rand(size, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(size, generator=generator) * 0.1)
                module.running_mean.copy_(torch.randn(size, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
                module.num_batches_tracked.fill_(7)


def reference(create_slowfast, depth, dilated=False, fusion_kernel=7):
    """pytorchvideo's SlowFast (eval mode, narrow stems) with random weights."""
    kwargs = dict(
        model_depth=depth,
        slowfast_fusion_conv_kernel_size=(fusion_kernel, 1, 1),
        stem_dim_outs=NARROW_STEMS,
    )
    if dilated:
        kwargs.update(RES5_DILATED)
    torch.manual_seed(depth)
    model = create_slowfast(**kwargs)
    randomise_batchnorm(model, depth)
    return model.eval()


def clip():
    return torch.rand(CLIP_SHAPE, generator=torch.Generator().manual_seed(3)) * 2 - 1


def pytorchvideo_features(model, inputs):
    """Both pathways after res5: stem and the four stages (``blocks[:5]``), no head."""
    features = [inputs[:, :, ::ALPHA], inputs]  # [slow, fast]
    with torch.no_grad():
        for block in model.blocks[:5]:
            features = block(features)
    return features


def assert_same_features(ours, theirs):
    assert len(ours) == len(theirs) == 2
    for pathway, (a, b) in enumerate(zip(ours, theirs)):
        assert a.shape == b.shape, (pathway, a.shape, b.shape)
        scale = b.abs().max().item()
        assert scale > 0
        assert (a - b).abs().max().item() <= TOLERANCE * scale, pathway


# ----------------------------------------------------------------- source layouts
# The correspondences below are PySlowFast's module names (video_model_builder.py:
# s1 = stem, s2..s5 = res2..res5, s1_fuse..s4_fuse, pathway{0,1}_res{i}, branch1,
# branch2.{a,b,c}) and Caffe2's blob names; they are written here from pytorchvideo's
# names, the opposite direction of the tool.
def to_pyslowfast(state_dict):
    """pytorchvideo names -> PySlowFast ``model_state`` names."""
    renamed = {}
    for name, value in state_dict.items():
        parts = name.split('.')
        if parts[0] == 'blocks' and parts[2] == 'proj':
            renamed[f'head.projection.{parts[3]}'] = value
            continue
        stage = int(parts[1]) + 1
        if parts[2] == 'multipathway_fusion':
            leaf = 'conv_f2s.weight' if parts[3] == 'conv_fast_to_slow' else f'bn.{parts[4]}'
            renamed[f's{stage}_fuse.{leaf}'] = value
        elif stage == 1:
            module = 'conv' if parts[4] == 'conv' else 'bn'
            renamed[f's1.pathway{parts[3]}_stem.{module}.{parts[5]}'] = value
        else:
            prefix = f's{stage}.pathway{parts[3]}_res{parts[5]}'
            if parts[6] == 'branch1_conv':
                renamed[f'{prefix}.branch1.weight'] = value
            elif parts[6] == 'branch1_norm':
                renamed[f'{prefix}.branch1_bn.{parts[7]}'] = value
            else:
                kind, letter = parts[7].split('_')
                leaf = f'{letter}.weight' if kind == 'conv' else f'{letter}_bn.{parts[8]}'
                renamed[f'{prefix}.branch2.{leaf}'] = value
    return renamed


CAFFE2_BN = {'weight': 's', 'bias': 'b', 'running_mean': 'rm', 'running_var': 'riv'}


def to_caffe2(pyslowfast, fast_blocks):
    """PySlowFast names -> Caffe2 blobs (numpy), plus optimizer blobs Caffe2 files carry."""
    blobs = {}
    for name, value in pyslowfast.items():
        if name.endswith('num_batches_tracked'):
            continue  # Caffe2 BN has no counter
        array = value.numpy()
        leaf = name.rsplit('.', 1)[1]
        suffix = 'w' if leaf == 'weight' and '_bn' not in name and '.bn.' not in name else None
        suffix = suffix or ('b' if leaf == 'bias' and 'projection' in name else CAFFE2_BN.get(leaf))
        match = re.match(r'^s1\.pathway(\d)_stem\.(conv|bn)\.', name)
        if match:
            t = 't_' if match[1] == '1' else ''
            key = f'{t}conv1_w' if match[2] == 'conv' else f'{t}res_conv1_bn_{suffix}'
        elif name.startswith('s1_fuse.'):
            key = 't_pool1_subsample_w' if 'conv_f2s' in name else f't_pool1_subsample_bn_{suffix}'
        elif (match := re.match(r'^s(\d)_fuse\.', name)) is not None:
            stage = int(match[1])
            base = f't_res{stage}_{fast_blocks[stage - 2] - 1}_branch2c_bn_subsample'
            key = f'{base}_w' if 'conv_f2s' in name else f'{base}_bn_{suffix}'
        elif name.startswith('head.projection.'):
            key = f'pred_{suffix}'
        else:
            match = re.match(r'^s(\d)\.pathway(\d)_res(\d+)\.(branch1|branch2)(_bn)?\.?(\w)?', name)
            t = 't_' if match[2] == '1' else ''
            block = f'{t}res{match[1]}_{match[3]}'
            if match[4] == 'branch1':
                key = f'{block}_branch1_w' if match[5] is None else f'{block}_branch1_bn_{suffix}'
            else:
                letter = re.match(r'.*branch2\.([abc])', name)[1]
                is_bn = f'{letter}_bn.' in name
                key = (
                    f'{block}_branch2{letter}_bn_{suffix}'
                    if is_bn
                    else f'{block}_branch2{letter}_w'
                )
        blobs[key] = array
    blobs['conv1_w_momentum'] = np.zeros_like(blobs['conv1_w'])
    blobs['lr'] = np.array([0.1], dtype=np.float32)
    blobs['model_iter'] = np.array([196000], dtype=np.int64)
    return blobs


FAST_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


def write_source(model, layout, folder, depth):
    """Save the reference weights as pytorchvideo ``.pyth``, PySlowFast ``.pyth`` or ``.pkl``."""
    state_dict = model.state_dict()
    if layout == 'pytorchvideo':
        path = osp.join(folder, f'SLOWFAST_R{depth}.pyth')
        torch.save(dict(model_state=state_dict, epoch=196), path)
    elif layout == 'pyslowfast':
        path = osp.join(folder, f'SLOWFAST_R{depth}_pyslowfast.pyth')
        torch.save(dict(model_state=to_pyslowfast(state_dict), epoch=196, cfg='...'), path)
    else:
        path = osp.join(folder, f'SLOWFAST_R{depth}.pkl')
        blobs = to_caffe2(to_pyslowfast(state_dict), FAST_BLOCKS[depth])
        with open(path, 'wb') as f:
            f.write(dumps_pickle(dict(blobs=blobs), protocol=2, style='numpy1'))
    return path


def mmaction_backbone(meta, dilated):
    """The repository's SlowFast backbone config, with what the converter inferred."""
    backbone = Config.fromfile(MODEL_BASE).model.backbone
    inferred = meta['backbone']
    backbone.type = 'ResNet3dSlowFast'
    backbone.channel_ratio = inferred['channel_ratio']
    for pathway in ('slow_pathway', 'fast_pathway'):
        backbone[pathway].update(
            {k: v for k, v in inferred[pathway].items() if k not in ('lateral',)}
        )
        if not dilated:  # Kinetics' own strides: res5 at stride 2, no dilation
            backbone[pathway].update(spatial_strides=(1, 2, 2, 2), dilations=(1, 1, 1, 1))
    with DefaultScope.overwrite_default_scope('mmaction'):  # whatever scope other tests left
        return ACTION_MODELS.build(backbone)


@pytest.fixture(scope='module')
def narrow_references(create_slowfast):
    return {depth: reference(create_slowfast, depth) for depth in (50, 101)}


@pytest.mark.parametrize('layout', ['pytorchvideo', 'pyslowfast', 'caffe2'])
@pytest.mark.parametrize('depth', [50, 101])
def test_converted_weights_give_pytorchvideos_features(narrow_references, tmp_path, depth, layout):
    model = narrow_references[depth]
    src = write_source(model, layout, str(tmp_path), depth)
    dst = str(tmp_path / 'converted.pth')
    fmt = 'pytorchvideo' if layout == 'pytorchvideo' else 'pyslowfast'
    assert write_converted_checkpoint(src, dst, fmt)[0] > 0
    meta = torch.load(dst, weights_only=True)['meta']
    assert meta['format'] == layout
    assert meta['backbone']['slow_pathway']['depth'] == depth
    assert meta['backbone']['slow_pathway']['lateral_norm'] is True
    holder = nn.Module()
    holder.backbone = mmaction_backbone(meta, dilated=False).eval()
    # What the issue asks of the output: it loads with mmengine's own Pretrained init.
    initialize(holder, dict(type='Pretrained', checkpoint=dst))
    inputs = clip()
    with torch.no_grad():
        ours = holder.backbone(inputs)
    assert_same_features(ours, pytorchvideo_features(model, inputs))
    dropped = meta['dropped']
    assert dropped and all(
        (
            'proj' in n
            or 'pred' in n
            or 'head' in n
            or n in ('lr', 'model_iter')
            or n.endswith('_momentum')
        )
        for n in dropped
    )


def narrow_k600_detector(cfg, checkpoint):
    """The K600 config pointed at ``checkpoint``, with narrow stems and a small head.

    The backbone keeps the config's depth, kernels, strides, dilations and lateral; only
    ``base_channels`` shrink (like the reference's stems), and the PCCA head (not loaded
    from the checkpoint) is made small so that building it is cheap.
    """
    cfg.model.init_cfg.checkpoint = checkpoint
    cfg.model.backbone.slow_pathway.base_channels = NARROW_STEMS[0]
    cfg.model.backbone.fast_pathway.base_channels = NARROW_STEMS[1]
    cfg.model.roi_head.bbox_head.update(embed_dims=16, num_layers=1, num_heads=2)


def test_r101_res5_dilated_through_the_k600_config(create_slowfast, tmp_path):
    """The configs' res5 (stride 1, dilation 2), loaded by the K600 config's own init_cfg.

    Narrow widths on both sides (the config's ``base_channels`` set like the reference's
    stems): the key names, kernels, strides and dilations are the config's.
    """
    model = reference(create_slowfast, 101, dilated=True)
    src = write_source(model, 'pytorchvideo', str(tmp_path), 101)
    dst = str(tmp_path / 'k600_converted.pth')
    num_tensors, meta = write_converted_checkpoint(src, dst, 'pytorchvideo')
    assert num_tensors > 0
    printed = conversion_report(src, dst, num_tensors, meta)  # what the tool prints
    assert 'lateral_norm=True' in printed and 'fusion_kernel=7' in printed
    assert 'mean=[114.75, 114.75, 114.75], std=[57.375, 57.375, 57.375]' in printed
    cfg = Config.fromfile(K600_CONFIG)
    assert cfg.model.init_cfg.type == 'CheckedPretrained'
    assert cfg.model.backbone.slow_pathway.lateral_norm is True
    meta = torch.load(dst, weights_only=True)['meta']
    assert list(cfg.model.data_preprocessor.mean) == meta['data_preprocessor']['mean']
    assert list(cfg.model.data_preprocessor.std) == meta['data_preprocessor']['std']
    narrow_k600_detector(cfg, dst)
    detector = MODELS.build(cfg.model)
    detector.init_weights()  # raises unless every backbone key and shape fits
    detector.eval()
    inputs = clip()
    with torch.no_grad():
        ours = detector.backbone(inputs)
    theirs = pytorchvideo_features(model, inputs)
    assert ours[0].shape[-1] == CLIP_SHAPE[-1] // 16  # res5 kept the stride-16 map
    assert_same_features(ours, theirs)


def test_fusion_kernel_follows_the_checkpoint(create_slowfast, tmp_path):
    """pytorchvideo's 8x8 R101 fuses with a 5-frame kernel; the configs' default is 7."""
    model = reference(create_slowfast, 101, dilated=True, fusion_kernel=5)
    src = write_source(model, 'pytorchvideo', str(tmp_path), 101)
    dst = str(tmp_path / 'fusion5.pth')
    num_tensors, meta = write_converted_checkpoint(src, dst, 'pytorchvideo')
    assert num_tensors > 0
    assert 'fusion_kernel=5' in conversion_report(src, dst, num_tensors, meta)
    cfg = Config.fromfile(K600_CONFIG)
    narrow_k600_detector(cfg, dst)
    with pytest.raises(PretrainedWeightsError) as error:
        MODELS.build(cfg.model).init_weights()
    lateral = 'backbone.slow_path.conv1_lateral.conv.weight'
    assert re.search(
        re.escape(lateral) + r' \(4, 2, 5, 1, 1\) vs \(4, 2, 7, 1, 1\)', str(error.value)
    )
    cfg.model.backbone.slow_pathway.fusion_kernel = 5  # what the converter printed
    detector = MODELS.build(cfg.model)
    detector.init_weights()
    inputs = clip()
    with torch.no_grad():
        ours = detector.eval().backbone(inputs)
    assert_same_features(ours, pytorchvideo_features(model, inputs))


# ------------------------------------------------------------------ bad input
@pytest.fixture(scope='module')
def tiny_sources(create_slowfast, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('sources'))
    model = reference(create_slowfast, 50)
    return {
        layout: write_source(model, layout, folder, 50) for layout in ('pytorchvideo', 'pyslowfast')
    }


def assert_nothing_written(folder, dst):
    assert not osp.exists(dst)
    assert not [name for name in os.listdir(folder) if name.startswith('.convert_')]


def test_leftover_pyslowfast_key_is_named(tiny_sources, tmp_path):
    """Through the command line: exit status 1 and the key named in its one-line error."""
    checkpoint = torch.load(tiny_sources['pyslowfast'], weights_only=True)
    checkpoint['model_state']['s3.pathway0_nonlocal1.conv_g.weight'] = torch.zeros(1)
    src = str(tmp_path / 'nonlocal.pyth')
    torch.save(checkpoint, src)
    dst = str(tmp_path / 'out.pth')
    result = run_tool('convert_slowfast_weights.py', src, dst, '--format', 'pyslowfast')
    assert result.returncode == 1
    assert 's3.pathway0_nonlocal1.conv_g.weight' in result.stderr
    assert_nothing_written(str(tmp_path), dst)


def test_unmapped_caffe2_blob_is_named(narrow_references, tmp_path):
    src = write_source(narrow_references[50], 'caffe2', str(tmp_path), 50)
    from pcca_plugin.utils.pickle_io import load_pickle

    blobs = load_pickle(src)['blobs']
    blobs['res3_0_branch2b_bn_extra'] = np.zeros(2, dtype=np.float32)
    with open(src, 'wb') as f:
        f.write(dumps_pickle(dict(blobs=blobs), protocol=2, style='numpy1'))
    with pytest.raises(ConversionError, match='res3_0_branch2b_bn_extra'):
        convert_slowfast_checkpoint(src, 'pyslowfast')


def test_missing_weight_is_named_with_the_mmaction2_key(tiny_sources, tmp_path):
    checkpoint = torch.load(tiny_sources['pytorchvideo'], weights_only=True)
    del checkpoint['model_state'][
        'blocks.2.multipathway_blocks.1.res_blocks.1.branch2.norm_b.weight'
    ]
    src = str(tmp_path / 'missing.pyth')
    torch.save(checkpoint, src)
    with pytest.raises(
        ConversionError, match=re.escape('backbone.fast_path.layer2.1.conv2.bn.weight')
    ):
        convert_slowfast_checkpoint(src, 'pytorchvideo')


def test_wrong_format_says_which_one(tiny_sources):
    with pytest.raises(ConversionError, match='use --format pytorchvideo'):
        convert_slowfast_checkpoint(tiny_sources['pytorchvideo'], 'pyslowfast')
    with pytest.raises(ConversionError, match='use --format pyslowfast'):
        convert_slowfast_checkpoint(tiny_sources['pyslowfast'], 'pytorchvideo')


@pytest.mark.parametrize('suffix', ['.pyth', '.pkl'])
def test_corrupt_or_missing_source_names_the_file_and_writes_nothing(tmp_path, suffix):
    """The command line: one line naming the file, exit status 1; --debug: the traceback."""
    src = tmp_path / f'corrupt{suffix}'
    src.write_bytes(b'\x80\x02not a checkpoint')
    dst = str(tmp_path / 'out.pth')
    result = run_tool('convert_slowfast_weights.py', str(src), dst, '--format', 'pyslowfast')
    assert result.returncode == 1
    assert str(src) in result.stderr
    assert 'Traceback' not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f'convert_slowfast_weights.py: error: {src}: not a readable')
    assert_nothing_written(str(tmp_path), dst)
    if suffix == '.pyth':
        args = (str(src), dst, '--format', 'pyslowfast', '--debug')
        debug = run_tool('convert_slowfast_weights.py', *args)
        assert debug.returncode == 1 and 'Traceback (most recent call last)' in debug.stderr
        assert 'ConversionError' in debug.stderr
    with pytest.raises(ConversionError, match='no such checkpoint'):
        convert_slowfast_checkpoint(str(tmp_path / 'absent.pyth'), 'pytorchvideo')


def test_unknown_layout_is_refused(tmp_path):
    src = str(tmp_path / 'other.pth')
    torch.save(dict(state_dict={'encoder.layer.weight': torch.zeros(2)}), src)
    with pytest.raises(ConversionError, match=r'encoder\.layer\.weight'):
        convert_slowfast_checkpoint(src, 'pytorchvideo')
