"""The per-clip form of the person-context attention: ``P`` applied once to the map (private).

Shape shorthand: ``N`` persons, ``C`` backbone channels, ``D = embed_dims``,
``H`` heads of ``E = D / H`` channels, ``L`` context tokens per person,
``R = B * H_map * W_map`` feature-map positions of the batch.

RoIAlign is linear in the feature map: the context tokens of all persons are
``K V`` with ``V`` the channels-last map ``(R, C)`` and ``K`` a sparse
``(N * L, R)`` matrix (:mod:`.roi_align`). The transformer's context
projection ``P`` (``D x C``) commutes with it::

    P c_i + p = P (K V)_i + p = (K (V P^T))_i + p

so projecting the map once, ``V P^T`` (``R * C * D`` multiply-adds for the
whole batch), gives every person's projected tokens ``y_i`` through the cheap
sparse product. The factored attention (:mod:`._factored`) then runs on the
``D``-wide projected tokens with ``P`` replaced by the identity: scores
``(W_K^hT q_h) . y_i`` and values ``W_V^h (sum_i a_hi y_i + s_h p)``.

Per person and layer the per-person factored form spends ``2 H C D`` on the
products with ``P``; this form spends ``R C D`` once per batch instead. It
pays when many persons share a clip (a full pitch of football players); for a
few persons per clip the per-person products are cheaper
(:mod:`.cost_model` chooses).

Activation memory: the projected tokens (``L * D`` numbers per person) are
formed once in the forward pass and not kept for the backward pass; it keeps
the projected map (``R * D`` for the batch) and forms the tokens once more
(a sparse product, ``O(N L D)``). The token gradients of all layers are
summed in one buffer and turned into the map's gradient by one sparse
product (:class:`ProjectedContext`).
"""

from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import (
    AttentionWeights,
    as_float,
    float32_einsum,
    key_weight_per_head,
    positional_keys,
    project_pooled_values,
    project_query,
    softmax_weights,
)
from ._sparse_roi_align import mix_rows_transposed
from .roi_align import SampledContext


class ProjectedContext:
    """Projected tokens ``y = K (V P^T)`` (bias left out) of every person, formed on demand.

    Gradient routing: the scores and pooling of every layer take
    :attr:`handle`, a one-element output of :class:`_TokensHandle` (whose
    input is the projected map), instead of the map itself. Their backward
    passes add their token gradients into one shared ``(N, L, D)`` buffer
    (:meth:`accumulate`); autograd runs the handle's backward after all of
    them, and it turns the sum into the map's gradient with one sparse
    product ``K^T``. So a backward pass forms the tokens once, allocates one
    gradient buffer and runs one sparse product, however many layers.

    Args:
        sampled (SampledContext): ``K`` and ``V`` from the extractor.
        projected_map (Tensor): ``V P^T``, ``(R, D)``.
    """

    def __init__(self, sampled: SampledContext, projected_map: Tensor) -> None:
        self.sampled = sampled
        self.projected_map = projected_map
        self._tokens: Optional[Tensor] = None
        self._grad_tokens: Optional[Tensor] = None
        self.handle = _TokensHandle.apply(projected_map, self)

    def tokens(self) -> Tensor:
        """``(N, L, D)``, float32 (float64 for float64 maps), without autograd history."""
        if self._tokens is None:
            with torch.no_grad():
                self._tokens = self.sampled.sample(self.projected_map.detach())
        return self._tokens

    def release(self) -> None:
        """Drop the tokens (after the forward pass; a backward pass forms them again)."""
        self._tokens = None

    def accumulate(self, weights: Tensor, values: Tensor) -> None:
        """Add ``weights @ values`` (``(N, L, k) @ (N, k, D)``) to the token gradient."""
        dtype = self.sampled.matrix.dtype  # the tokens' dtype
        weights, values = weights.to(dtype), values.to(dtype)
        if self._grad_tokens is None:
            self._grad_tokens = torch.bmm(weights, values)  # (N, L, D)
        else:
            self._grad_tokens.baddbmm_(weights, values)

    def map_gradient(self) -> Tensor:
        """``K^T`` times the accumulated token gradient, ``(R, D)``; resets the accumulation."""
        grad_tokens, self._grad_tokens, self._tokens = self._grad_tokens, None, None
        if grad_tokens is None:
            return torch.zeros_like(self.projected_map)
        flat = grad_tokens.reshape(-1, grad_tokens.shape[-1])  # (N*L, D)
        return mix_rows_transposed(self.sampled.matrix, flat).to(self.projected_map.dtype)


class _TokensHandle(torch.autograd.Function):
    """A one-element stand-in for the projected tokens in the autograd graph.

    Every consumer's backward runs before this node's (autograd orders nodes
    by their dependencies), so its backward sees the complete token gradient.
    """

    @staticmethod
    def forward(ctx, projected_map: Tensor, context: ProjectedContext) -> Tensor:
        ctx.context = context
        ctx.save_for_backward(projected_map)  # the tokens are formed from it again
        return projected_map.new_zeros(1)

    @staticmethod
    def backward(ctx, grad_handle: Tensor):
        return ctx.context.map_gradient(), None


class _ClipScores(torch.autograd.Function):
    """``scores[n, h, i] = (W_K^hT q[n, h]) . y[n, i]`` in float32.

    Takes the per-head query ``q`` (``E`` wide) and ``W_K`` per head, and saves
    only those: ``W_K^hT q`` (``D`` wide) and the tokens are formed again in
    the backward pass.
    """

    @staticmethod
    def forward(
        ctx, query: Tensor, key_weight: Tensor, handle: Tensor, context: ProjectedContext
    ) -> Tensor:
        ctx.context = context
        ctx.save_for_backward(query, key_weight)
        tokens = context.tokens()  # (N, L, D)
        with torch.autocast(device_type=query.device.type, enabled=False):
            query_in_d = _query_in_d(query, key_weight).to(tokens.dtype)  # (N, H, D)
            return torch.bmm(query_in_d, tokens.transpose(1, 2))  # (N, H, L)

    @staticmethod
    def backward(ctx, grad_scores: Tensor):
        query, key_weight = ctx.saved_tensors
        context = ctx.context
        tokens = context.tokens()  # formed again, once per backward pass
        grad_scores = grad_scores.to(tokens.dtype)
        grad_query = grad_key_weight = grad_handle = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            grad_in_d = torch.bmm(grad_scores, tokens)  # (N, H, D)
            compute = as_float(query).dtype
            if ctx.needs_input_grad[0]:
                grad_query = torch.einsum(
                    'nhd,hed->nhe', grad_in_d.to(compute), key_weight.to(compute)
                ).to(query.dtype)  # (N, H, E)
            if ctx.needs_input_grad[1]:
                grad_key_weight = torch.einsum(
                    'nhe,nhd->hed', as_float(query), grad_in_d.to(compute)
                ).to(key_weight.dtype)  # (H, E, D)
        if ctx.needs_input_grad[2]:
            query_in_d = _query_in_d(query, key_weight)  # (N, H, D), recomputed
            context.accumulate(grad_scores.transpose(1, 2), query_in_d)  # (N, L, H) @ (N, H, D)
            grad_handle = torch.zeros_like(context.handle)
        return grad_query, grad_key_weight, grad_handle, None


def _query_in_d(query: Tensor, key_weight: Tensor) -> Tensor:
    """``W_K^hT q_h`` for every head: ``(N, H, E)`` and ``(H, E, D)`` -> ``(N, H, D)``."""
    return torch.einsum('nhe,hed->nhd', as_float(query), as_float(key_weight))


class _ClipPooling(torch.autograd.Function):
    """``pooled[n, h] = sum_i a[n, h, i] y[n, i]``; saves ``a`` only."""

    @staticmethod
    def forward(ctx, weights: Tensor, handle: Tensor, context: ProjectedContext) -> Tensor:
        ctx.context = context
        ctx.save_for_backward(weights)
        tokens = context.tokens()  # (N, L, D)
        return torch.bmm(weights.to(tokens.dtype), tokens)  # (N, H, D)

    @staticmethod
    def backward(ctx, grad_pooled: Tensor):
        (weights,) = ctx.saved_tensors
        context = ctx.context
        tokens = context.tokens()
        grad_pooled = grad_pooled.to(tokens.dtype)
        grad_weights = grad_handle = None
        if ctx.needs_input_grad[0]:
            grad_weights = torch.bmm(grad_pooled, tokens.transpose(1, 2)).to(weights.dtype)
        if ctx.needs_input_grad[1]:
            context.accumulate(weights.transpose(1, 2), grad_pooled)  # (N, L, H) @ (N, H, D)
            grad_handle = torch.zeros_like(context.handle)
        return grad_weights, grad_handle, None


class PerClipContext(NamedTuple):
    """The context of every layer in the per-clip form.

    Attributes:
        projected (ProjectedContext): the tokens projected once per clip.
        context_bias (Tensor): ``p``, ``(D,)``.
        key_pos (Tensor or None): positional encoding of the keys, ``(1, L, D)``.
    """

    projected: ProjectedContext
    context_bias: Tensor
    key_pos: Optional[Tensor]

    @classmethod
    def project(
        cls,
        sampled: SampledContext,
        context_weight: Tensor,
        context_bias: Tensor,
        key_pos: Optional[Tensor],
    ) -> 'PerClipContext':
        """Project the map once, ``V P^T`` (``(R, C)`` -> ``(R, D)``), for every person."""
        projected_map = F.linear(sampled.table, context_weight)  # (R, D)
        return cls(ProjectedContext(sampled, projected_map), context_bias, key_pos)


def per_clip_attention(query: Tensor, context: PerClipContext, weights: AttentionWeights) -> Tensor:
    """The factored form's attention on the tokens projected once per clip.

    Arguments and result as every form's (:class:`~._common.AttentionWeights`);
    ``context`` holds the projected tokens ``y_i`` (``P`` applied), ``p`` and
    the positional encoding.
    """
    projected, context_bias, key_pos = context
    q = project_query(query, weights)  # (N, H, E)
    key_weight = key_weight_per_head(weights)  # (H, E, D)
    # (W_K^hT q_h) . y_i, (N, H, L), float32; W_K^hT q_h is not kept for backward
    logits = _ClipScores.apply(q, key_weight, projected.handle, projected)
    if key_pos is not None:  # q_h . (W_K^h pos_i)
        w_k = weights.in_proj_weight.chunk(3)[1]  # (D, D)
        pos_keys = positional_keys(key_pos, w_k, weights.num_heads)  # (L, H, E)
        logits = logits + float32_einsum('nhe,lhe->nhl', q, pos_keys)  # (N, H, L)
    attention, mass = softmax_weights(
        logits, q.shape[-1], weights.attn_dropout
    )  # (N, H, L), (N, H, 1)
    # sum_i a_hi y_i + s_h p, (N, H, D)
    pooled = _ClipPooling.apply(attention, projected.handle, projected) + mass * context_bias
    return project_pooled_values(pooled, mass, weights)
