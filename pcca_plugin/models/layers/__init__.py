"""Reusable layers: the person-context cross-attention transformer."""

from .cross_attention import (
    CrossAttentionLayer,
    LearnedPositionalEncoding2D,
    PersonContextTransformer,
    count_macs_per_person,
)

__all__ = [
    'CrossAttentionLayer',
    'LearnedPositionalEncoding2D',
    'PersonContextTransformer',
    'count_macs_per_person',
]
