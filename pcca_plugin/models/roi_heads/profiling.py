"""Multiply-adds and activation memory of a RoI head's forward, split at its RoI extractor.

What ``tools/benchmark_heads.py`` reports for every head (ours and mmaction2's):

- multiply-adds: ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs / 2), with
  the math attention backend so that fused kernels stay visible to it (sparse
  products are not counted);
- saved activations: every tensor autograd keeps for the backward pass
  (``torch.autograd.graph.saved_tensors_hooks``), each storage once,
  parameters and the input feature map left out; for the extractor and head
  together, and for the head alone beyond its inputs (the extractor's
  outputs).

Context handed over as a :class:`~pcca_plugin.models.layers.SampledContext`
counts as the head's input in the form the head reads it: the tokens, formed
right after the extractor, unless the transformer projects the map per clip
(then the map is the input and only the per-clip form's own tensors count).
"""

from typing import Callable, Iterable, NamedTuple, Set

import torch
import torch.nn as nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from ..layers import SampledContext


class ForwardCost(NamedTuple):
    """The cost of one forward.

    Attributes:
        macs (float): multiply-adds counted (FLOPs / 2).
        saved_bytes (int): activations saved for backward by extractor and head.
        head_saved_bytes (int): those saved by the head that are not its inputs.
    """

    macs: float
    saved_bytes: int
    head_saved_bytes: int


def storages(tensors: Iterable) -> Set[int]:
    """Storage addresses of the tensors (a ``SampledContext``'s map included); others ignored."""
    flat = [t.table if isinstance(t, SampledContext) else t for t in tensors]
    return {t.untyped_storage().data_ptr() for t in flat if isinstance(t, torch.Tensor)}


def _as_head_reads_it(roi_head: nn.Module, output: tuple) -> tuple:
    """The extractor's output with a ``SampledContext`` turned into tokens unless used per clip."""
    first, context = output
    transformer = getattr(roi_head.bbox_head, 'transformer', None)
    if isinstance(context, SampledContext) and (
        transformer is None or transformer.execution_form(context) != 'per_clip'
    ):
        return first, context.tokens()  # (N, L, C)
    return output


def training_forward_cost(
    roi_head: nn.Module, forward: Callable[[], object], inputs: Iterable[torch.Tensor]
) -> ForwardCost:
    """Run ``forward()`` once in training mode and measure it.

    Args:
        roi_head (nn.Module): the RoI head (``bbox_roi_extractor`` and
            ``bbox_head``); ``forward`` runs it (or its extractor only).
        forward (callable): one forward of the head, e.g. ``_bbox_forward``.
        inputs (Iterable[Tensor]): the feature maps, left out of the saved bytes.

    Returns:
        ForwardCost: multiply-adds and saved bytes.
    """
    roi_head.train()
    excluded = storages(roi_head.parameters()) | storages(inputs)
    saved, extracted = {'extractor': {}, 'head': {}}, []

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in excluded:
            saved['head' if extracted else 'extractor'][storage.data_ptr()] = storage.nbytes()
        return tensor

    def after_extractor(module, args, output):
        extracted.append(_as_head_reads_it(roi_head, output))
        return extracted[0]

    handle = roi_head.bbox_roi_extractor.register_forward_hook(after_extractor)
    counter = FlopCounterMode(display=False)
    try:
        with sdpa_kernel(SDPBackend.MATH), counter:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
                forward()
    finally:
        handle.remove()
    inputs_of_head = storages(extracted[0])
    head_only = [size for ptr, size in saved['head'].items() if ptr not in inputs_of_head]
    everything = {**saved['extractor'], **saved['head']}
    return ForwardCost(counter.get_total_flops() / 2, sum(everything.values()), sum(head_only))


def inference_macs(roi_head: nn.Module, forward: Callable[[], object]) -> float:
    """Multiply-adds of an eval-mode forward without gradients, counted on a second forward.

    The first forward builds what is cached (the folded weights of the factored
    PCCA head) and is not counted.
    """
    roi_head.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad():
        forward()
        with sdpa_kernel(SDPBackend.MATH), counter:
            forward()
    return counter.get_total_flops() / 2


__all__ = ['ForwardCost', 'inference_macs', 'storages', 'training_forward_cost']
