"""Checkpoint surgery: keep the weights of one submodule (e.g. a pretrained backbone).

A detector that starts from a recognizer or another detector should take the
backbone and nothing else: a head whose shapes happen to match (the toy
pretraining head and the toy linear head are both 72 -> 7) would otherwise be
loaded too by ``init_cfg=dict(type='Pretrained')`` or ``load_from``, which load
every key whose name and shape match.
"""

import os
import os.path as osp
from typing import Dict

import torch

from ..compat import load_mmengine_checkpoint


def extract_submodule_weights(checkpoint: str, out_file: str, prefix: str = 'backbone.') -> Dict:
    """Write the ``state_dict`` entries of ``checkpoint`` whose names start with ``prefix``.

    The names keep their prefix, so the file loads into a whole model
    (``model.init_cfg=dict(type='Pretrained', checkpoint=out_file)``) and fills
    just that submodule.

    Args:
        checkpoint: an mmengine checkpoint (``dict(state_dict=..., meta=...)``) or a
            bare state dict.
        out_file: where to write ``dict(state_dict=..., meta=dict(source, prefix))``.
        prefix: names to keep, e.g. ``'backbone.'``.

    Returns:
        ``dict(out_file, num_tensors, num_values)``: tensors kept and their total size.
    """
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'{checkpoint}: no such checkpoint to take {prefix!r} weights from')
    loaded = load_mmengine_checkpoint(checkpoint, map_location='cpu')
    state_dict = loaded.get('state_dict', loaded) if isinstance(loaded, dict) else None
    if not isinstance(state_dict, dict):
        raise ValueError(f'{checkpoint}: not a state dict nor a dict with a "state_dict" field')
    kept = {name: value for name, value in state_dict.items() if name.startswith(prefix)}
    if not kept:
        roots = sorted({name.split('.')[0] for name in state_dict})
        raise KeyError(
            f'{checkpoint}: no weights named {prefix!r}...; its top-level names are {roots}'
        )
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    torch.save(dict(state_dict=kept, meta=dict(source=checkpoint, prefix=prefix)), out_file)
    return dict(
        out_file=out_file,
        num_tensors=len(kept),
        num_values=int(sum(v.numel() for v in kept.values() if torch.is_tensor(v))),
    )
