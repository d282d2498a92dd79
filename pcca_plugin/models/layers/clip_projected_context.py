"""The context projection applied once per clip instead of once per person.

Shape shorthand: ``N`` persons, ``C`` backbone channels, ``D = embed_dims``,
``H`` heads, ``L`` context tokens per person, ``R = B * H_map * W_map``
feature-map positions of the batch.

RoIAlign is linear in the feature map: the context tokens of all persons are
``K V`` with ``V`` the channels-last map ``(R, C)`` and ``K`` a sparse
``(N * L, R)`` matrix (:mod:`.sparse_roi_align`). The transformer's context
projection ``P`` (``D x C``) commutes with it::

    P c_i + p = P (K V)_i + p = (K (V P^T))_i + p

so projecting the map once, ``V P^T`` (``R * C * D`` multiply-adds for the
whole batch), gives every person's projected tokens through the cheap sparse
product. The factored attention of :mod:`.cross_attention` then runs on the
``D``-wide projected tokens with ``P`` replaced by the identity: scores
``(W_K^hT q_h) . y_i`` and values ``W_V^h (sum_i a_hi y_i + s_h p)``.

Per person and layer the per-person factored form spends ``2 H C D`` on the
products with ``P``; this form spends ``R C D`` once per batch instead. It
pays when many persons share a clip (a full pitch of football players); for a
few persons per clip the per-person products are cheaper.
:class:`~.cross_attention.PersonContextTransformer` picks the cheaper one by
counting multiply-adds (:func:`count_clip_projection_macs`).

Activation memory: the projected tokens (``L * D`` numbers per person) are
formed once in the forward pass and not kept for the backward pass; it keeps
the projected map (``R * D`` for the batch) and forms the tokens once more
(a sparse product, ``O(N L D)``). The token gradients of all layers are
summed in one buffer and turned into the map's gradient by one sparse
product (:class:`ProjectedContext`).
"""

from typing import Optional

import torch
from torch import Tensor

from .sparse_roi_align import SampledContext, mix_rows_transposed

_HALF_DTYPES = (torch.float16, torch.bfloat16)


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


def _as_float(x: Tensor) -> Tensor:
    return x.float() if x.dtype in _HALF_DTYPES else x


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
            compute = _as_float(query).dtype
            if ctx.needs_input_grad[0]:
                grad_query = torch.einsum(
                    'nhd,hed->nhe', grad_in_d.to(compute), key_weight.to(compute)
                ).to(query.dtype)  # (N, H, E)
            if ctx.needs_input_grad[1]:
                grad_key_weight = torch.einsum(
                    'nhe,nhd->hed', _as_float(query), grad_in_d.to(compute)
                ).to(key_weight.dtype)  # (H, E, D)
        if ctx.needs_input_grad[2]:
            query_in_d = _query_in_d(query, key_weight)  # (N, H, D), recomputed
            context.accumulate(grad_scores.transpose(1, 2), query_in_d)  # (N, L, H) @ (N, H, D)
            grad_handle = torch.zeros_like(context.handle)
        return grad_query, grad_key_weight, grad_handle, None


def _query_in_d(query: Tensor, key_weight: Tensor) -> Tensor:
    """``W_K^hT q_h`` for every head: ``(N, H, E)`` and ``(H, E, D)`` -> ``(N, H, D)``."""
    return torch.einsum('nhe,hed->nhd', _as_float(query), _as_float(key_weight))


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


def clip_scores(query: Tensor, key_weight: Tensor, context: ProjectedContext) -> Tensor:
    """Scores of the projected tokens, float32 ``(N, H, L)``.

    Args:
        query (Tensor): per-head queries ``q_h``, ``(N, H, E)``.
        key_weight (Tensor): ``W_K`` split by head, ``(H, E, D)``.
        context (ProjectedContext): the projected tokens.
    """
    return _ClipScores.apply(query, key_weight, context.handle, context)


def clip_pooling(weights: Tensor, context: ProjectedContext) -> Tensor:
    """Attention weights ``(N, H, L)`` -> weighted sums of the projected tokens ``(N, H, D)``."""
    return _ClipPooling.apply(weights, context.handle, context)


def count_clip_projection_macs(
    in_channels: int,
    embed_dims: int,
    num_positions: int,
    num_persons: int,
    num_tokens: int,
    num_heads: int,
    num_layers: int,
) -> int:
    """Multiply-adds that depend on where ``P`` is applied, in the per-clip form.

    ``R C D`` for the projected map plus, per person and layer, the scores
    against and the weighted sum of the ``D``-wide tokens (``2 H L D``). The
    per-person form's counterpart is ``2 H C D + 2 H L C`` per person and
    layer (:func:`count_per_person_projection_macs`); the rest of the
    transformer costs the same either way.
    """
    per_person = num_layers * 2 * num_heads * num_tokens * embed_dims
    return num_positions * in_channels * embed_dims + num_persons * per_person


def count_per_person_projection_macs(
    in_channels: int,
    embed_dims: int,
    num_persons: int,
    num_tokens: int,
    num_heads: int,
    num_layers: int,
) -> int:
    """The per-person factored form's counterpart of :func:`count_clip_projection_macs`.

    Per person and layer, the two products with ``P`` per head (``2 H C D``)
    and the scores against and weighted sum of the raw tokens (``2 H L C``):
    the terms of ``count_macs_per_person`` that the per-clip form replaces.
    """
    per_layer = 2 * num_heads * in_channels * embed_dims + 2 * num_heads * num_tokens * in_channels
    return num_persons * num_layers * per_layer


__all__ = [
    'ProjectedContext',
    'clip_pooling',
    'clip_scores',
    'count_clip_projection_macs',
    'count_per_person_projection_macs',
]
