"""Reusable layers: the person-context cross-attention transformer and a device-aware RoIAlign.

Public modules: :mod:`.cross_attention` (the transformer, eq. (1)-(3) of
Ning et al. 2021), :mod:`.cost_model` (the multiply-adds of its execution
forms and the choice among them) and :mod:`.roi_align` (average RoIAlign, a
sparse matrix product on the CPU and mmcv's kernels elsewhere). The modules
with a leading underscore hold one execution form each and are private.
"""

from .cost_model import ATTN_IMPLS, CONTEXT_PROJECTIONS, count_macs_per_person
from .cross_attention import (
    CrossAttentionLayer,
    LearnedPositionalEncoding2D,
    PersonContextTransformer,
)
from .roi_align import RoIAlign, SampledContext

__all__ = [
    'ATTN_IMPLS',
    'CONTEXT_PROJECTIONS',
    'CrossAttentionLayer',
    'LearnedPositionalEncoding2D',
    'PersonContextTransformer',
    'RoIAlign',
    'SampledContext',
    'count_macs_per_person',
]
