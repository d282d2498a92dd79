"""Reusable layers: the person-context cross-attention transformer, RoIAlign as a sparse product."""

from .cross_attention import (
    ATTN_IMPLS,
    CrossAttentionLayer,
    LearnedPositionalEncoding2D,
    PersonContextTransformer,
    count_macs_per_person,
    factored_attention,
    standard_attention,
)
from .sparse_roi_align import SampledContext, SparseRoIAlign, roi_align_matrix

__all__ = [
    'ATTN_IMPLS',
    'CrossAttentionLayer',
    'LearnedPositionalEncoding2D',
    'PersonContextTransformer',
    'SampledContext',
    'SparseRoIAlign',
    'count_macs_per_person',
    'factored_attention',
    'roi_align_matrix',
    'standard_attention',
]
