"""Checked loading of pretrained weights: a wrong checkpoint is an error, not a warning.

mmengine's ``init_cfg=dict(type='Pretrained', checkpoint=...)`` loads with
``strict=False`` and only *logs* the keys that are missing, unexpected or of another
shape, so an R50 checkpoint in an R101 config, or a recognizer of another layout,
trains from mostly random weights without anyone noticing. :class:`CheckedPretrainedInit`
(``type='CheckedPretrained'``) loads the same files (local paths, ``http(s)://`` URLs that
mmengine downloads and caches, ``torchvision://`` ...) into one submodule, ``backbone.``
by default, and raises :class:`PretrainedWeightsError` when

* the file or URL cannot be read (no network, unreachable host, missing file): the
  message names it and the override ``--cfg-options model.init_cfg.checkpoint=PATH``;
* a key of the submodule is missing from the checkpoint, the checkpoint has a key the
  submodule lacks, or a shape differs: the message lists the keys (and, for ResNet
  backbones, the depth each side has).

Keys outside the submodule that match ``ignore_keys`` are dropped (a Kinetics
recognizer's ``cls_head.*`` by default); any other key outside it is unexpected.

Weights are loaded where mmengine loads ``Pretrained`` weights: after the children's own
``init_weights``. mmengine applies only ``type='Pretrained'`` after the children (in
``BaseModule.init_weights``); every other initializer runs before them, and the
children's random init would overwrite the loaded weights. So the initializer runs the
children's ``init_weights`` itself first (the same loop as ``BaseModule``) and marks them
initialised, which makes ``BaseModule`` skip them afterwards.

Key shorthand in this module: a *state dict* maps names to tensors; *shapes* maps the
same names to ``torch.Size``.
"""

import os.path as osp
import re
from collections import defaultdict
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.model.weight_init import update_init_info
from mmengine.registry import WEIGHT_INITIALIZERS

from ..compat import load_mmengine_checkpoint

#: How a user replaces the default checkpoint, repeated in every error.
OVERRIDE_HINT = (
    'pass another file with --cfg-options model.init_cfg.checkpoint=PATH '
    '(model.init_cfg=None trains from random weights)'
)
#: Keys listed in an error before "... and N more".
MAX_KEYS_SHOWN = 12
#: ResNet blocks per stage -> depth (torchvision / mmaction2 ResNet3d settings).
RESNET_DEPTHS = {
    (2, 2, 2, 2): 18,
    (3, 4, 6, 3): 34,  # same block counts as 50; told apart by the block type
    (3, 4, 23, 3): 101,
    (3, 8, 36, 3): 152,
}
#: Names that tell a pytorchvideo / PySlowFast state dict (convert it first).
FOREIGN_LAYOUTS = {
    'pytorchvideo': re.compile(r'^blocks\.\d+\.multipathway_blocks\.'),
    'pyslowfast': re.compile(r'^s\d(_fuse)?\.'),
}
_LAYER_KEY = re.compile(r'(?:^|\.)(?:(slow_path|fast_path)\.)?layer(\d+)\.(\d+)\.(conv\d)\.')


class PretrainedWeightsError(RuntimeError):
    """Pretrained weights that cannot be read or do not fit the model."""


def is_url(checkpoint: str) -> bool:
    """Whether mmengine reads ``checkpoint`` through a scheme (``https://``, ``torchvision://``)."""
    return '://' in checkpoint


def read_checkpoint(checkpoint: str, map_location: str = 'cpu') -> Dict[str, torch.Tensor]:
    """The state dict of a local file or URL, with mmengine's loaders.

    Accepts mmengine checkpoints (``dict(state_dict=..., meta=...)``) and bare state
    dicts; a leading ``module.`` (a DDP-wrapped save) is removed, as mmengine does.

    Raises:
        PretrainedWeightsError: the file is missing, the URL cannot be downloaded or the
            content is not a state dict; the message names ``checkpoint`` and the override.
    """
    if not is_url(checkpoint) and not osp.isfile(checkpoint):
        raise PretrainedWeightsError(
            f'pretrained checkpoint {checkpoint!r} not found (model.init_cfg.checkpoint); '
            f'download or convert it there (docs/model.md, "Pretrained backbones"), or '
            f'{OVERRIDE_HINT}'
        )
    try:
        loaded = load_mmengine_checkpoint(checkpoint, map_location=map_location)
    except Exception as exc:  # network, HTTP, unpickling: all end the same way
        where = 'download' if is_url(checkpoint) else 'read'
        raise PretrainedWeightsError(
            f'could not {where} the pretrained checkpoint {checkpoint!r} '
            f'(model.init_cfg.checkpoint): {type(exc).__name__}: {exc}. Without network '
            f'access, download it elsewhere and {OVERRIDE_HINT}'
        ) from exc
    if isinstance(loaded, Mapping) and 'model_state' in loaded:
        raise PretrainedWeightsError(
            f'{checkpoint!r} is a PySlowFast / pytorchvideo checkpoint (it has "model_state"); '
            'convert it first: python tools/convert_slowfast_weights.py SRC DST '
            '--format {pyslowfast,pytorchvideo} (docs/model.md, "Pretrained backbones")'
        )
    state_dict = loaded.get('state_dict', loaded) if isinstance(loaded, Mapping) else None
    if not isinstance(state_dict, Mapping) or not all(
        torch.is_tensor(value) for value in state_dict.values()
    ):
        raise PretrainedWeightsError(
            f'{checkpoint!r} holds no state dict (expected a dict of tensors or a dict with '
            f'a "state_dict" field); {OVERRIDE_HINT}'
        )
    return {re.sub(r'^module\.', '', name): value for name, value in state_dict.items()}


def select_submodule_weights(
    state_dict: Mapping[str, torch.Tensor], prefix: str, ignore_keys: Sequence[str] = ()
) -> Tuple[Dict[str, torch.Tensor], List[str], List[str]]:
    """Split a state dict into the submodule's weights, ignored keys and foreign keys.

    Args:
        state_dict: names (with their ``prefix``) -> tensors.
        prefix: the submodule's names start with it (``'backbone.'``); ``''`` takes all.
        ignore_keys: regular expressions (``re.search``) of names outside the submodule
            to drop, e.g. ``r'^cls_head\\.'``.

    Returns:
        ``(selected, ignored, foreign)``: the submodule's weights, keys kept, the names
        dropped by ``ignore_keys``, and every other name outside the submodule.
    """
    patterns = [re.compile(pattern) for pattern in ignore_keys]
    selected, ignored, foreign = {}, [], []
    for name, value in state_dict.items():
        if name.startswith(prefix):
            selected[name] = value
        elif any(pattern.search(name) for pattern in patterns):
            ignored.append(name)
        else:
            foreign.append(name)
    return selected, ignored, foreign


def compare_shapes(
    expected: Mapping[str, torch.Size], given: Mapping[str, torch.Size]
) -> Tuple[List[str], List[str], List[Tuple[str, tuple, tuple]]]:
    """Keys the model has and the checkpoint lacks, the reverse, and shape mismatches.

    Returns:
        ``(missing, unexpected, wrong_shape)``; ``wrong_shape`` holds
        ``(name, checkpoint shape, model shape)``. All three empty: an exact fit.
    """
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    wrong_shape = [
        (name, tuple(given[name]), tuple(expected[name]))
        for name in sorted(set(expected) & set(given))
        if tuple(given[name]) != tuple(expected[name])
    ]
    return missing, unexpected, wrong_shape


def resnet_depths(names: Iterable[str]) -> Dict[str, Optional[int]]:
    """The ResNet depth of every pathway named in a state dict, from its blocks per stage.

    ``layer3.22.conv1...`` means 23 blocks in stage 3; ``(3, 4, 23, 3)`` is depth 101.
    Pathways: ``'slow_path'``, ``'fast_path'`` or ``''`` (a single-pathway ResNet3d).
    Depth 34 and 50 share their block counts and are told apart by ``conv3`` (bottleneck).

    Returns:
        ``{pathway: depth}``; ``None`` for block counts of no standard depth.
    """
    blocks = defaultdict(lambda: defaultdict(int))
    bottleneck = defaultdict(bool)
    for name in names:
        match = _LAYER_KEY.search(name)
        if match is None:
            continue
        pathway, stage, block, conv = match.groups()
        pathway = pathway or ''
        blocks[pathway][int(stage)] = max(blocks[pathway][int(stage)], int(block) + 1)
        bottleneck[pathway] |= conv == 'conv3'
    depths = {}
    for pathway, per_stage in blocks.items():
        counts = tuple(per_stage[stage] for stage in sorted(per_stage))
        depth = RESNET_DEPTHS.get(counts)
        if counts == (3, 4, 6, 3) and bottleneck[pathway]:
            depth = 50
        depths[pathway] = depth
    return depths


def _listing(title: str, items: Sequence) -> str:
    shown = ', '.join(str(item) for item in items[:MAX_KEYS_SHOWN])
    more = f' ... and {len(items) - MAX_KEYS_SHOWN} more' if len(items) > MAX_KEYS_SHOWN else ''
    return f'\n  {len(items)} {title}: {shown}{more}'


def check_fit(
    expected: Mapping[str, torch.Size],
    given: Mapping[str, torch.Size],
    checkpoint: str,
    foreign: Sequence[str] = (),
    prefix: str = 'backbone.',
    hint: str = OVERRIDE_HINT,
) -> None:
    """Raise :class:`PretrainedWeightsError` unless ``given`` fits ``expected`` exactly.

    Args:
        expected: the model submodule's names (with ``prefix``) -> shapes.
        given: the checkpoint's names under ``prefix`` -> shapes.
        checkpoint: named in the message.
        foreign: checkpoint names outside ``prefix`` that no ``ignore_keys`` matched.
        prefix: the submodule, named in the message.
        hint: the message's last line (by default: how to pass another file).
    """
    missing, unexpected, wrong_shape = compare_shapes(expected, given)
    if not (missing or unexpected or wrong_shape or foreign):
        return
    message = f"pretrained checkpoint {checkpoint!r} does not fit the model's {prefix!r}:"
    if missing:
        message += _listing('keys of the model missing from the checkpoint', missing)
    if unexpected:
        message += _listing('checkpoint keys the model does not have', unexpected)
    if wrong_shape:
        message += _listing(
            'keys of another shape (checkpoint vs model)',
            [f'{name} {tuple(ours)} vs {tuple(theirs)}' for name, ours, theirs in wrong_shape],
        )
    if foreign:
        message += _listing(
            f'checkpoint keys outside {prefix!r} (add a pattern to init_cfg.ignore_keys '
            'to drop them)',
            list(foreign),
        )
    model_depths, checkpoint_depths = resnet_depths(expected), resnet_depths(given)
    if model_depths and checkpoint_depths and model_depths != checkpoint_depths:
        message += (
            f'\n  ResNet depth per pathway: checkpoint {checkpoint_depths}, '
            f'model {model_depths}: weights of another depth'
        )
    layouts = [
        name
        for name, pattern in FOREIGN_LAYOUTS.items()
        if any(pattern.search(key) for key in list(given) + list(foreign))
    ]
    if layouts:
        message += (
            f'\n  the checkpoint is in the {layouts[0]} layout: convert it first with '
            f'python tools/convert_slowfast_weights.py SRC DST --format {layouts[0]}'
        )
    raise PretrainedWeightsError(f'{message}\n  {hint}' if hint else message)


def init_children_first(module: torch.nn.Module) -> None:
    """Run the children's ``init_weights`` now, as ``BaseModule`` does, and mark them done.

    ``BaseModule.init_weights`` calls a child's ``init_weights`` unless ``child.is_init``;
    some (mmaction2's ``ResNet3dSlowFast``) override it without setting the flag.
    """
    for child in module.children():
        if is_model_wrapper(child) and not hasattr(child, 'init_weights'):
            child = child.module
        if hasattr(child, 'init_weights') and not getattr(child, 'is_init', False):
            child.init_weights()
            if hasattr(child, 'is_init'):
                child.is_init = True
            if hasattr(child, '_params_init_info'):
                update_init_info(
                    child,
                    init_info=f'Initialized by user-defined `init_weights` in '
                    f'{type(child).__name__} ',
                )


@WEIGHT_INITIALIZERS.register_module(name='CheckedPretrained')
class CheckedPretrainedInit:
    """Load one submodule from a checkpoint; any key or shape that does not fit is an error.

    Used as a model's ``init_cfg``::

        init_cfg = dict(type='CheckedPretrained', checkpoint=URL_OR_PATH,
                        prefix='backbone.', ignore_keys=[r'^cls_head\\.'])

    Args:
        checkpoint: local path or URL (mmengine downloads URLs once into torch's hub
            cache, ``~/.cache/torch/hub/checkpoints``).
        prefix: the submodule to fill (names in the checkpoint carry the same prefix as
            in the model, e.g. a recognizer's ``backbone.``); ``''`` for the whole model.
        ignore_keys: regular expressions of checkpoint names outside ``prefix`` to drop.
            Default: the recognizer's classifier ``cls_head.*``.
        map_location: passed to ``torch.load``.
    """

    def __init__(
        self,
        checkpoint: str,
        prefix: str = 'backbone.',
        ignore_keys: Sequence[str] = (r'^cls_head\.',),
        map_location: str = 'cpu',
    ):
        if not isinstance(checkpoint, str) or not checkpoint:
            raise PretrainedWeightsError(
                f'init_cfg.checkpoint must be a path or URL, got {checkpoint!r}; {OVERRIDE_HINT}'
            )
        self.checkpoint = checkpoint
        self.prefix = prefix
        self.ignore_keys = tuple(ignore_keys)
        self.map_location = map_location

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}(checkpoint={self.checkpoint!r}, prefix={self.prefix!r}, '
            f'ignore_keys={self.ignore_keys!r})'
        )

    def target(self, module: torch.nn.Module) -> torch.nn.Module:
        """The submodule that ``prefix`` names (``module`` itself for ``''``)."""
        if not self.prefix:
            return module
        name = self.prefix.rstrip('.')
        try:
            return module.get_submodule(name)
        except AttributeError as exc:
            raise PretrainedWeightsError(
                f'init_cfg.prefix={self.prefix!r}: {type(module).__name__} has no '
                f'submodule {name!r}'
            ) from exc

    def __call__(self, module: torch.nn.Module) -> None:
        target = self.target(module)
        init_children_first(module)
        state_dict = read_checkpoint(self.checkpoint, self.map_location)
        selected, ignored, foreign = select_submodule_weights(
            state_dict, self.prefix, self.ignore_keys
        )
        expected = {self.prefix + name: value.shape for name, value in target.state_dict().items()}
        check_fit(
            expected,
            {name: value.shape for name, value in selected.items()},
            self.checkpoint,
            foreign,
            self.prefix,
        )
        target.load_state_dict(
            {name[len(self.prefix) :]: value for name, value in selected.items()}, strict=True
        )
        print_log(
            f'{type(self).__name__}: loaded all {len(selected)} tensors of {self.prefix!r} '
            f'from {self.checkpoint}; ignored {len(ignored)} keys ({", ".join(self.ignore_keys)})',
            logger='current',
        )
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=f'{type(self).__name__}: {self.checkpoint}')
