"""Convert public SlowFast checkpoints into mmaction2's ``backbone.*`` layout.

mmaction2's model zoo has Kinetics-400 SlowFast recognizers only; the Kinetics-600/700
SlowFast-R101 models that spatio-temporal detection entries start from are published
by PySlowFast and pytorchvideo. :func:`convert_slowfast_checkpoint` renames their weights
to mmaction2's ``ResNet3dSlowFast`` names, checks every tensor against that backbone built
with the architecture the weights imply, and :func:`write_converted_checkpoint` writes a
checkpoint that loads with::

    init_cfg=dict(type='CheckedPretrained', checkpoint=DST)   # or type='Pretrained'

The command line is ``tools/convert_slowfast_weights.py SRC DST --format
{pytorchvideo,pyslowfast}`` (``docs/model.md``, "Pretrained backbones").

Sources:

* ``--format pytorchvideo``: the hub checkpoints (``SLOWFAST_8x8_R101.pyth``,
  ``SLOWFAST_16x8_R101_50_50.pyth``...): ``dict(model_state=...)`` of a
  ``pytorchvideo.models.slowfast.create_slowfast`` network (``blocks.N...`` names);
* ``--format pyslowfast``: PySlowFast checkpoints, ``.pyth`` with ``model_state``
  (``s1.pathway0_stem...`` names) or Caffe2 ``.pkl`` with ``blobs``
  (``res2_0_branch2a_w``, ``t_`` for the fast pathway).

Every source name must map to a backbone name and every backbone name must be filled;
the classifier (``head.*`` / ``blocks.6.proj.*`` / Caffe2 ``pred_*``) and Caffe2's
optimizer blobs (``*_momentum``, ``lr``, ``model_iter``) are dropped and reported.
Anything else left over is an error that names it, and nothing is written.

What the weights need from the config, printed at the end:

* ``lateral_norm=True``: PySlowFast and pytorchvideo fuse fast into slow with
  conv + BN + ReLU (``FuseFastToSlow``); mmaction2's default lateral is a bare conv.
* the fusion kernel and the per-block temporal kernels (``inflate``) found in the weights
  (pytorchvideo's 8x8 R101: fusion kernel 5; R101_50_50: only 6 inflated res4 blocks);
* ``data_preprocessor`` mean 0.45 / std 0.225 on [0, 1], i.e. 114.75 / 57.375 on [0, 255]
  (PySlowFast's ``DATA.MEAN`` / ``DATA.STD``; mmaction2's Kinetics weights use ImageNet's).
* alpha (``speed_ratio``, the fusion stride) is not stored in the weights: 4 for the
  8x8 and 16x8 models.

Name correspondences follow pytorchvideo 0.1.5 (``models/slowfast.py``,
``models/resnet.py``) and PySlowFast (``slowfast/models/video_model_builder.py`` and the
Caffe2 names of ``slowfast/utils/c2_model_loading.py``); the code is this project's.
"""

import os
import os.path as osp
import re
import tempfile
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch

from ..utils.pickle_io import load_pickle
from .pretrained import PretrainedWeightsError, check_fit

#: Source layouts (``--format`` of the command line).
SLOWFAST_FORMATS = ('pytorchvideo', 'pyslowfast')
#: mmaction2 pathway of each PySlowFast / pytorchvideo pathway index.
PATHWAYS = ('slow_path', 'fast_path')
#: Lateral (fast -> slow) connections of mmaction2's slow pathway after stem, res2..res4.
LATERALS = ('conv1_lateral', 'layer1_lateral', 'layer2_lateral', 'layer3_lateral')
#: BatchNorm entries of a state dict.
BN_FIELDS = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
#: Pixel statistics the PySlowFast / pytorchvideo weights were trained with (on [0, 1]).
SOURCE_MEAN = 0.45
SOURCE_STD = 0.225
#: mmaction2's ActionDataPreprocessor sees pixels in [0, 255].
PIXEL_MAX = 255.0
#: Bottleneck conv letter -> mmaction2's Bottleneck3d conv.
BRANCH2_CONV = {'a': 'conv1', 'b': 'conv2', 'c': 'conv3'}
#: ResNet blocks per stage of each bottleneck depth.
STAGE_BLOCKS = {(3, 4, 6, 3): 50, (3, 4, 23, 3): 101, (3, 8, 36, 3): 152}

_BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'

#: pytorchvideo ``create_slowfast`` names -> mmaction2 names (``{p}``: pathway).
PYTORCHVIDEO_RULES = [
    (re.compile(r'^blocks\.0\.multipathway_blocks\.([01])\.conv\.weight$'), 'stem_conv'),
    (re.compile(rf'^blocks\.0\.multipathway_blocks\.([01])\.norm\.{_BN}$'), 'stem_bn'),
    (re.compile(r'^blocks\.([0-3])\.multipathway_fusion\.conv_fast_to_slow\.weight$'), 'fuse_conv'),
    (re.compile(rf'^blocks\.([0-3])\.multipathway_fusion\.norm\.{_BN}$'), 'fuse_bn'),
    (
        re.compile(
            r'^blocks\.([1-4])\.multipathway_blocks\.([01])\.res_blocks\.(\d+)'
            r'\.branch1_conv\.weight$'
        ),
        'shortcut_conv',
    ),
    (
        re.compile(
            rf'^blocks\.([1-4])\.multipathway_blocks\.([01])\.res_blocks\.(\d+)'
            rf'\.branch1_norm\.{_BN}$'
        ),
        'shortcut_bn',
    ),
    (
        re.compile(
            r'^blocks\.([1-4])\.multipathway_blocks\.([01])\.res_blocks\.(\d+)'
            r'\.branch2\.conv_([abc])\.weight$'
        ),
        'branch2_conv',
    ),
    (
        re.compile(
            rf'^blocks\.([1-4])\.multipathway_blocks\.([01])\.res_blocks\.(\d+)'
            rf'\.branch2\.norm_([abc])\.{_BN}$'
        ),
        'branch2_bn',
    ),
]
#: pytorchvideo's classifier (``ResNetBasicHead.proj``, after the pooling block).
PYTORCHVIDEO_HEAD = re.compile(r'^blocks\.\d+\.proj\.(weight|bias)$')

#: PySlowFast ``.pyth`` names -> mmaction2 names. Stage numbers: PySlowFast s1 is the
#: stem, s2..s5 are res2..res5 (mmaction2's layer1..layer4); s1_fuse..s4_fuse follow
#: the stem and res2..res4.
PYSLOWFAST_RULES = [
    (re.compile(r'^s1\.pathway([01])_stem\.conv\.weight$'), 'stem_conv'),
    (re.compile(rf'^s1\.pathway([01])_stem\.bn\.{_BN}$'), 'stem_bn'),
    (re.compile(r'^s([1-4])_fuse\.conv_f2s\.weight$'), 'fuse_conv'),
    (re.compile(rf'^s([1-4])_fuse\.bn\.{_BN}$'), 'fuse_bn'),
    (re.compile(r'^s([2-5])\.pathway([01])_res(\d+)\.branch1\.weight$'), 'shortcut_conv'),
    (re.compile(rf'^s([2-5])\.pathway([01])_res(\d+)\.branch1_bn\.{_BN}$'), 'shortcut_bn'),
    (re.compile(r'^s([2-5])\.pathway([01])_res(\d+)\.branch2\.([abc])\.weight$'), 'branch2_conv'),
    (
        re.compile(rf'^s([2-5])\.pathway([01])_res(\d+)\.branch2\.([abc])_bn\.{_BN}$'),
        'branch2_bn',
    ),
]
#: PySlowFast's classifier / detection head.
PYSLOWFAST_HEAD = re.compile(r'^head\.')

#: Caffe2 blob suffix -> PySlowFast parameter (``riv`` is the running variance, as
#: PySlowFast's Caffe2 loader reads it).
CAFFE2_PARAMS = {
    'w': 'weight',
    'b': 'bias',
    's': 'weight',
    'rm': 'running_mean',
    'riv': 'running_var',
}
#: Caffe2 blob names -> PySlowFast names (``t_``: the fast pathway).
CAFFE2_RULES = [
    (re.compile(r'^(t_)?conv1_(w)$'), 'stem_conv'),
    (re.compile(r'^(t_)?res_conv1_bn_(s|b|rm|riv)$'), 'stem_bn'),
    (re.compile(r'^t_pool1_subsample_(w)$'), 'fuse1_conv'),
    (re.compile(r'^t_pool1_subsample_bn_(s|b|rm|riv)$'), 'fuse1_bn'),
    (re.compile(r'^t_res([2-4])_(\d+)_branch2c_bn_subsample_(w)$'), 'fuse_conv'),
    (re.compile(r'^t_res([2-4])_(\d+)_branch2c_bn_subsample_bn_(s|b|rm|riv)$'), 'fuse_bn'),
    (re.compile(r'^(t_)?res([2-5])_(\d+)_branch1_(w)$'), 'shortcut_conv'),
    (re.compile(r'^(t_)?res([2-5])_(\d+)_branch1_bn_(s|b|rm|riv)$'), 'shortcut_bn'),
    (re.compile(r'^(t_)?res([2-5])_(\d+)_branch2([abc])_(w)$'), 'branch2_conv'),
    (re.compile(r'^(t_)?res([2-5])_(\d+)_branch2([abc])_bn_(s|b|rm|riv)$'), 'branch2_bn'),
]
#: Caffe2 classifier and training bookkeeping (optimizer momentum, lr, iteration).
CAFFE2_DROPPED = re.compile(r'^pred_(w|b)$|_momentum$|^lr$|^model_iter$|^iter$')


class ConversionError(ValueError):
    """A source checkpoint that cannot be converted; the message names the file and keys."""


def mmaction_name(kind: str, groups: Tuple[str, ...], stage_offset: int) -> str:
    """The mmaction2 ``ResNet3dSlowFast`` name (without ``backbone.``) of one matched rule.

    Args:
        kind: the rule's kind (``'stem_conv'``, ``'branch2_bn'``...).
        groups: the rule's regex groups (stage, pathway, block, conv letter, BN field).
        stage_offset: subtract from the source's stage number to get mmaction2's
            ``layerN`` (pytorchvideo ``blocks.1`` and PySlowFast ``s2`` are ``layer1``)
            and the index in :data:`LATERALS` (``blocks.0`` / ``s1_fuse``: the stem's).
    """
    if kind == 'stem_conv':
        return f'{PATHWAYS[int(groups[0])]}.conv1.conv.weight'
    if kind == 'stem_bn':
        return f'{PATHWAYS[int(groups[0])]}.conv1.bn.{groups[1]}'
    if kind in ('fuse_conv', 'fuse_bn'):
        lateral = LATERALS[int(groups[0]) - stage_offset]
        leaf = 'conv.weight' if kind == 'fuse_conv' else f'bn.{groups[1]}'
        return f'slow_path.{lateral}.{leaf}'
    stage, pathway, block = int(groups[0]) - stage_offset, PATHWAYS[int(groups[1])], groups[2]
    prefix = f'{pathway}.layer{stage}.{block}'
    if kind == 'shortcut_conv':
        return f'{prefix}.downsample.conv.weight'
    if kind == 'shortcut_bn':
        return f'{prefix}.downsample.bn.{groups[3]}'
    if kind == 'branch2_conv':
        return f'{prefix}.{BRANCH2_CONV[groups[3]]}.conv.weight'
    if kind == 'branch2_bn':
        return f'{prefix}.{BRANCH2_CONV[groups[3]]}.bn.{groups[4]}'
    raise ValueError(f'unknown rule kind {kind!r}')


def rename(
    state_dict: Mapping[str, torch.Tensor], rules, head: 're.Pattern', stage_offset: int
) -> Tuple[Dict[str, torch.Tensor], List[str], List[str]]:
    """Apply ``rules`` to every name.

    Returns:
        ``(converted, dropped, unmapped)``: mmaction2 names -> tensors, the classifier
        names dropped, and the names no rule matched.
    """
    converted, dropped, unmapped = {}, [], []
    for name, value in state_dict.items():
        if head.search(name):
            dropped.append(name)
            continue
        for pattern, kind in rules:
            match = pattern.match(name)
            if match:
                converted[mmaction_name(kind, match.groups(), stage_offset)] = value
                break
        else:
            unmapped.append(name)
    return converted, dropped, unmapped


def caffe2_to_pyslowfast(blobs: Mapping[str, np.ndarray]) -> Tuple[Dict, List[str], List[str]]:
    """Rename Caffe2 blobs to PySlowFast ``.pyth`` names; arrays become tensors.

    The fusion after res2..res4 is named after the fast stage's last block
    (``t_res2_2_branch2c_bn_subsample_w`` for res2 of a ResNet-50).

    Returns:
        ``(state_dict, dropped, unmapped)``.
    """
    state_dict, dropped, unmapped = {}, [], []
    for name, value in blobs.items():
        if CAFFE2_DROPPED.search(name):
            dropped.append(name)
            continue
        for pattern, kind in CAFFE2_RULES:
            match = pattern.match(name)
            if match:
                state_dict[pyslowfast_name(kind, match.groups())] = torch.from_numpy(
                    np.ascontiguousarray(value)
                )
                break
        else:
            unmapped.append(name)
    return state_dict, dropped, unmapped


def pyslowfast_name(kind: str, groups: Tuple[Optional[str], ...]) -> str:
    """The PySlowFast name of one matched Caffe2 rule."""
    param = CAFFE2_PARAMS[groups[-1]]
    if kind in ('stem_conv', 'stem_bn'):
        pathway = 1 if groups[0] else 0
        return f's1.pathway{pathway}_stem.{"conv" if kind == "stem_conv" else "bn"}.{param}'
    if kind == 'fuse1_conv':
        return f's1_fuse.conv_f2s.{param}'
    if kind == 'fuse1_bn':
        return f's1_fuse.bn.{param}'
    if kind == 'fuse_conv':
        return f's{groups[0]}_fuse.conv_f2s.{param}'
    if kind == 'fuse_bn':
        return f's{groups[0]}_fuse.bn.{param}'
    pathway, stage, block = (1 if groups[0] else 0), groups[1], groups[2]
    prefix = f's{stage}.pathway{pathway}_res{block}'
    if kind == 'shortcut_conv':
        return f'{prefix}.branch1.{param}'
    if kind == 'shortcut_bn':
        return f'{prefix}.branch1_bn.{param}'
    if kind == 'branch2_conv':
        return f'{prefix}.branch2.{groups[3]}.{param}'
    return f'{prefix}.branch2.{groups[3]}_bn.{param}'


def add_bn_counters(state_dict: Dict[str, torch.Tensor]) -> int:
    """Add a zero ``num_batches_tracked`` to every BatchNorm without one (Caffe2 has none).

    Returns:
        How many were added.
    """
    added = 0
    for name in [name for name in state_dict if name.endswith('.running_mean')]:
        counter = name[: -len('running_mean')] + 'num_batches_tracked'
        if counter not in state_dict:
            state_dict[counter] = torch.tensor(0, dtype=torch.long)
            added += 1
    return added


def read_source(src: str, fmt: str) -> Tuple[Dict, str]:
    """The raw state dict of ``src`` and its layout: ``pytorchvideo``, ``pyslowfast``, ``caffe2``.

    Raises:
        ConversionError: missing, unreadable or corrupt file, or no state dict in it.
    """
    if not osp.isfile(src):
        raise ConversionError(f'{src}: no such checkpoint')
    if fmt == 'pyslowfast' and src.endswith('.pkl'):
        try:
            loaded = load_pickle(src)
        except Exception as exc:  # refused globals, truncation, garbage alike
            raise ConversionError(
                f'{src}: not a readable Caffe2 .pkl ({type(exc).__name__}: {exc})'
            ) from exc
        if not isinstance(loaded, Mapping) or not isinstance(loaded.get('blobs'), Mapping):
            raise ConversionError(f'{src}: a Caffe2 checkpoint is a dict with "blobs"; not found')
        return dict(loaded['blobs']), 'caffe2'
    try:
        loaded = torch.load(src, map_location='cpu', weights_only=True)
    except Exception as exc:  # zip, pickle and allow-list errors alike
        raise ConversionError(
            f'{src}: not a readable torch checkpoint ({type(exc).__name__}: {exc})'
        ) from exc
    if isinstance(loaded, Mapping) and 'model_state' in loaded:
        loaded = loaded['model_state']
    elif isinstance(loaded, Mapping) and 'state_dict' in loaded:
        loaded = loaded['state_dict']
    if not isinstance(loaded, Mapping) or not all(torch.is_tensor(v) for v in loaded.values()):
        raise ConversionError(
            f'{src}: expected a state dict, or a dict with "model_state" (PySlowFast, '
            'pytorchvideo) or "state_dict"'
        )
    return {re.sub(r'^module\.', '', name): value for name, value in loaded.items()}, fmt


def _inflate(convs: Dict[int, int]) -> object:
    """Per-stage ``inflate`` from the temporal kernel of each block's ``conv1``."""
    flags = tuple(int(convs[block] > 1) for block in sorted(convs))
    return flags[0] if len(set(flags)) == 1 else flags


def infer_backbone(state_dict: Mapping[str, torch.Tensor]) -> dict:
    """The ``ResNet3dSlowFast`` settings that the converted weights fix.

    Depth (blocks per stage), base channels, stem kernels, the fusion kernel and the
    per-block temporal kernels (``inflate``) are read from the tensors; the strides,
    dilations and alpha are not stored and keep the config's values.

    Raises:
        ConversionError: the weights match no ResNet depth or lack a pathway.
    """
    pathways = {}
    for pathway in PATHWAYS:
        stem = state_dict.get(f'{pathway}.conv1.conv.weight')
        if stem is None:
            raise ConversionError(f'no {pathway} stem ({pathway}.conv1.conv.weight)')
        temporal = {}  # stage -> {block: temporal kernel of conv1}
        for name, value in state_dict.items():
            match = re.match(rf'^{pathway}\.layer(\d)\.(\d+)\.conv1\.conv\.weight$', name)
            if match:
                temporal.setdefault(int(match[1]), {})[int(match[2])] = value.shape[2]
        blocks = tuple(len(temporal.get(stage, {})) for stage in range(1, 5))
        if blocks not in STAGE_BLOCKS:
            raise ConversionError(
                f'{pathway}: {blocks} blocks per stage match no ResNet depth '
                f'({sorted(STAGE_BLOCKS.values())})'
            )
        pathways[pathway] = dict(
            depth=STAGE_BLOCKS[blocks],
            base_channels=int(stem.shape[0]),
            conv1_kernel=tuple(int(k) for k in stem.shape[2:]),
            inflate=tuple(_inflate(temporal[stage]) for stage in range(1, 5)),
        )
    lateral = state_dict.get('slow_path.conv1_lateral.conv.weight')
    if lateral is None:
        raise ConversionError('no fast-to-slow fusion (slow_path.conv1_lateral.conv.weight)')
    slow, fast = pathways['slow_path'], pathways['fast_path']
    return dict(
        type='ResNet3dSlowFast',
        channel_ratio=slow['base_channels'] // fast['base_channels'],
        slow_pathway=dict(
            slow, lateral=True, lateral_norm=True, fusion_kernel=int(lateral.shape[2])
        ),
        fast_pathway=dict(fast, lateral=False),
    )


def build_reference(backbone: dict) -> Dict[str, torch.Size]:
    """Names -> shapes of mmaction2's ``ResNet3dSlowFast`` built as ``backbone`` says.

    Built on the ``meta`` device: shapes only, no memory or init cost.
    """
    from mmaction.models import ResNet3dSlowFast

    kwargs = {key: value for key, value in backbone.items() if key != 'type'}
    kwargs['slow_pathway'] = dict(kwargs['slow_pathway'], type='resnet3d')
    kwargs['fast_pathway'] = dict(kwargs['fast_pathway'], type='resnet3d')
    with torch.device('meta'):
        model = ResNet3dSlowFast(pretrained=None, **kwargs)
    return {name: value.shape for name, value in model.state_dict().items()}


def data_preprocessor() -> dict:
    """The ``data_preprocessor`` mean/std for PySlowFast / pytorchvideo weights."""
    return dict(mean=[SOURCE_MEAN * PIXEL_MAX] * 3, std=[SOURCE_STD * PIXEL_MAX] * 3)


def convert_slowfast_checkpoint(src: str, fmt: str) -> Tuple[Dict[str, torch.Tensor], dict]:
    """Convert ``src`` in memory.

    Returns:
        ``(state_dict, meta)``: ``backbone.*`` tensors, and what was inferred and dropped.

    Raises:
        ConversionError: unreadable source, a source name no rule maps (named), or
            converted weights that do not fill mmaction2's backbone exactly (names listed).
    """
    if fmt not in SLOWFAST_FORMATS:
        raise ConversionError(f'--format must be one of {SLOWFAST_FORMATS}, got {fmt!r}')
    raw, layout = read_source(src, fmt)
    source_layout = layout
    dropped: List[str] = []
    if layout == 'caffe2':
        raw, dropped, unmapped = caffe2_to_pyslowfast(raw)
        if unmapped:
            raise ConversionError(
                f'{src}: {len(unmapped)} Caffe2 blobs map to no SlowFast weight: '
                f'{", ".join(sorted(unmapped))}'
            )
        layout = 'pyslowfast'
    if layout == 'pytorchvideo':
        converted, head, unmapped = rename(raw, PYTORCHVIDEO_RULES, PYTORCHVIDEO_HEAD, 0)
    else:
        converted, head, unmapped = rename(raw, PYSLOWFAST_RULES, PYSLOWFAST_HEAD, 1)
    dropped += head
    if unmapped:
        hint = ''
        if fmt == 'pytorchvideo' and any(name.startswith('s1.') for name in unmapped):
            hint = ' (PySlowFast names: use --format pyslowfast)'
        elif fmt == 'pyslowfast' and any(name.startswith('blocks.') for name in unmapped):
            hint = ' (pytorchvideo names: use --format pytorchvideo)'
        raise ConversionError(
            f'{src}: {len(unmapped)} {fmt} keys map to no mmaction2 SlowFast weight{hint}: '
            f'{", ".join(sorted(unmapped)[:20])}' + (' ...' if len(unmapped) > 20 else '')
        )
    added = add_bn_counters(converted)
    backbone = infer_backbone(converted)
    try:
        check_fit(
            {f'backbone.{n}': s for n, s in build_reference(backbone).items()},
            {f'backbone.{n}': v.shape for n, v in converted.items()},
            src,
            hint='',
        )
    except PretrainedWeightsError as exc:
        raise ConversionError(f'{exc}\n  (inferred backbone: {backbone})') from exc
    state_dict = {
        f'backbone.{name}': value.float() if value.is_floating_point() else value
        for name, value in converted.items()
    }
    meta = dict(
        source=osp.abspath(src),
        format=source_layout,
        dropped=sorted(dropped),
        num_batches_tracked_added=added,
        backbone=backbone,
        data_preprocessor=data_preprocessor(),
    )
    return state_dict, meta


def save_atomic(obj: dict, dst: str) -> None:
    """``torch.save`` to a temporary file next to ``dst``, then rename: no half file."""
    folder = osp.dirname(osp.abspath(dst))
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix='.convert_', suffix='.pth', dir=folder)
    os.close(handle)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, dst)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def config_snippet(dst: str, meta: dict) -> str:
    """The config lines that the converted weights need."""
    backbone = meta['backbone']
    slow, fast = backbone['slow_pathway'], backbone['fast_pathway']
    slow_keys = ('depth', 'lateral_norm', 'fusion_kernel', 'inflate')
    fast_keys = ('depth', 'inflate')
    fmt = ', '.join
    return (
        'model = dict(\n'
        f"    init_cfg=dict(type='CheckedPretrained', checkpoint={dst!r}),\n"
        '    backbone=dict(\n'
        f'        slow_pathway=dict({fmt(f"{k}={slow[k]!r}" for k in slow_keys)}),\n'
        f'        fast_pathway=dict({fmt(f"{k}={fast[k]!r}" for k in fast_keys)}),\n'
        '    ),\n'
        f'    data_preprocessor=dict(mean={meta["data_preprocessor"]["mean"]}, '
        f'std={meta["data_preprocessor"]["std"]}),\n'
        ')'
    )


def write_converted_checkpoint(src: str, dst: str, fmt: str) -> Tuple[int, dict]:
    """Convert ``src`` and write ``dict(state_dict, meta)`` to ``dst`` atomically.

    Returns:
        ``(num_tensors, meta)``: the backbone tensors written and what was inferred.

    Raises:
        ConversionError: as :func:`convert_slowfast_checkpoint`; nothing is written then.
    """
    state_dict, meta = convert_slowfast_checkpoint(src, fmt)
    save_atomic(dict(state_dict=state_dict, meta=meta), dst)
    return len(state_dict), meta


def conversion_report(src: str, dst: str, num_tensors: int, meta: dict) -> str:
    """What a conversion wrote and the config lines the weights need (the tool prints it)."""
    slow = meta['backbone']['slow_pathway']
    return '\n'.join(
        (
            f'wrote {dst}: {num_tensors} backbone tensors from {src} '
            f'({meta["format"]}; SlowFast-R{slow["depth"]}); dropped {len(meta["dropped"])} '
            'classifier/optimizer keys',
            'The weights need a fast-to-slow lateral with BN + ReLU (lateral_norm=True), the '
            'kernels below, and pixels normalised with mean 0.45 / std 0.225 on [0, 1] '
            '(x 255 for the data preprocessor). Config lines:',
            config_snippet(dst, meta),
        )
    )


__all__ = [
    'SLOWFAST_FORMATS',
    'ConversionError',
    'add_bn_counters',
    'build_reference',
    'caffe2_to_pyslowfast',
    'config_snippet',
    'conversion_report',
    'convert_slowfast_checkpoint',
    'data_preprocessor',
    'infer_backbone',
    'mmaction_name',
    'pyslowfast_name',
    'read_source',
    'rename',
    'save_atomic',
    'write_converted_checkpoint',
]
