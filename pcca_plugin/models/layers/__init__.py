"""Reusable layers: the person-context cross-attention transformer."""

from .cross_attention import (
    ATTN_IMPLS,
    CrossAttentionLayer,
    LearnedPositionalEncoding2D,
    PersonContextTransformer,
    count_macs_per_person,
    factored_attention,
    standard_attention,
)

__all__ = [
    'ATTN_IMPLS',
    'CrossAttentionLayer',
    'LearnedPositionalEncoding2D',
    'PersonContextTransformer',
    'count_macs_per_person',
    'factored_attention',
    'standard_attention',
]
