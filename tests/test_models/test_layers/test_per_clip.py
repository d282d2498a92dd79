"""The per-clip form keeps the projected map for the backward pass, never the projected tokens.

Its outputs and gradients against the standard form are in ``test_cross_attention.py``.
"""

import torch

from pcca_plugin.testing.models import (
    EMBED_DIMS,
    IN_CHANNELS,
    sampled_context,
    twin_transformers,
)


def test_per_clip_does_not_keep_the_projected_tokens_for_backward():
    """Saved for the backward pass: the projected map (R x D), never the tokens (N x L x D)."""
    _, model = twin_transformers(
        torch.float64, with_pos=False, dropout=0.0, context_projection='per_clip'
    )
    num_persons = 6
    sampled = sampled_context(num_persons, torch.float64)
    saved_shapes = []

    def pack(tensor):
        saved_shapes.append(tuple(tensor.shape))
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = model(torch.randn(num_persons, IN_CHANNELS, dtype=torch.float64), sampled)
    tokens = (num_persons, sampled.num_tokens, EMBED_DIMS)
    assert (sampled.table.shape[0], EMBED_DIMS) in saved_shapes  # the projected map
    assert tokens not in saved_shapes
    out.sum().backward()  # the tokens are formed again for the backward pass
    assert sampled.table.grad is not None and bool(sampled.table.grad.abs().sum() > 0)
