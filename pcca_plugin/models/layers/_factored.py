"""The factored form of the person-context attention: keys and values never formed (private).

Shape shorthand: ``N`` persons, ``C`` backbone channels, ``D = embed_dims``,
``H`` heads of ``E = D / H`` channels, ``L`` context tokens per person.

With a single query per person the keys and values never have to exist. With
``P, p`` the context projection, ``W_K^h, b_K^h`` and ``W_V^h, b_V^h`` the
rows of head ``h``, ``q_h`` the projected query and ``c_i`` a raw context
token (``C`` channels)::

    q_h . (W_K^h (P c_i + p + pos_i) + b_K^h)
        = (P^T W_K^hT q_h) . c_i + (W_K^hT q_h) . pos_i + const_h

and the constant cancels in the softmax over ``i``. With ``a_hi`` the
attention weights after dropout and ``s_h = sum_i a_hi`` (1 without dropout;
dropout is linear in ``a``)::

    sum_i a_hi (W_V^h (P c_i + p) + b_V^h)
        = W_V^h (P (sum_i a_hi c_i) + s_h p) + s_h b_V^h

per head. Per person and layer this costs ``2 H C D`` for the two products
with ``P`` instead of ``2 L D^2`` for keys and values plus ``L C D`` once for
the context projection (0.16 instead of 0.74 GMACs per person at the paper's
sizes; :func:`~.cost_model.count_macs_per_person`). Two autograd functions
keep the ``(N, H, C)`` intermediates out of the backward pass.
"""

from typing import NamedTuple, Optional

import torch
from torch import Tensor

from ._common import (
    AttentionWeights,
    float32_einsum,
    key_weight_per_head,
    project_pooled_values,
    project_query,
    softmax_weights,
)


class _ProjectedScores(torch.autograd.Function):
    """``scores[n, h, i] = (q[n, h] @ P) . c[n, i]``, without keeping ``q @ P``.

    Forward: ``u = q @ P`` (``(N, H, C)``, in the autocast dtype when autocast
    is on), then the scores in float32 (float64 for float64 inputs). Saves
    ``q``, ``c`` and ``P`` only; ``u`` (``H * C`` numbers per person) is
    recomputed in the backward pass, and only when the context needs a
    gradient.
    """

    @staticmethod
    def forward(ctx, query: Tensor, context: Tensor, weight: Tensor) -> Tensor:
        projected = torch.matmul(query, weight)  # (N, H, C)
        ctx.compute_dtype = projected.dtype
        ctx.save_for_backward(query, context, weight)
        return float32_einsum('nhc,nlc->nhl', projected, context)  # (N, H, L)

    @staticmethod
    def backward(ctx, grad_scores: Tensor):
        query, context, weight = ctx.saved_tensors
        dtype = ctx.compute_dtype
        grad_query = grad_context = grad_weight = None
        grad_projected = torch.bmm(grad_scores, context.to(grad_scores.dtype))  # (N, H, C)
        grad_projected = grad_projected.to(dtype)
        if ctx.needs_input_grad[0]:
            grad_query = torch.matmul(grad_projected, weight.to(dtype).t()).to(query.dtype)
        if ctx.needs_input_grad[1]:
            projected = torch.matmul(query.to(dtype), weight.to(dtype))  # (N, H, C)
            grad_context = torch.bmm(grad_scores.transpose(1, 2), projected.to(grad_scores.dtype))
            grad_context = grad_context.to(context.dtype)  # (N, L, C)
        if ctx.needs_input_grad[2]:
            flat_query = query.to(dtype).reshape(-1, query.shape[-1])  # (N*H, D)
            flat_grad = grad_projected.reshape(-1, grad_projected.shape[-1])  # (N*H, C)
            grad_weight = torch.matmul(flat_query.t(), flat_grad).to(weight.dtype)  # (D, C)
        return grad_query, grad_context, grad_weight


class _PooledProjection(torch.autograd.Function):
    """``out[n, h] = P (sum_i a[n, h, i] c[n, i])``, without keeping the pooled tokens.

    Saves ``a``, ``c`` and ``P``; the pooled tokens ``z = a @ c`` (``H * C``
    numbers per person) cost ``H * L * C`` multiply-adds and are recomputed in
    the backward pass for the gradient of ``P``.
    """

    @staticmethod
    def forward(ctx, weights: Tensor, context: Tensor, weight: Tensor) -> Tensor:
        pooled = torch.bmm(weights.to(context.dtype), context)  # (N, H, C)
        out = torch.matmul(pooled, weight.t())  # (N, H, D)
        ctx.compute_dtype = out.dtype
        ctx.save_for_backward(weights, context, weight)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        weights, context, weight = ctx.saved_tensors
        dtype = ctx.compute_dtype
        grad_out = grad_out.to(dtype)
        context_c = context.to(dtype)
        grad_weights = grad_context = grad_weight = None
        grad_pooled = torch.matmul(grad_out, weight.to(dtype))  # (N, H, C)
        if ctx.needs_input_grad[0]:
            grad_weights = torch.bmm(grad_pooled, context_c.transpose(1, 2)).to(weights.dtype)
        if ctx.needs_input_grad[1]:
            grad_context = torch.bmm(weights.to(dtype).transpose(1, 2), grad_pooled)
            grad_context = grad_context.to(context.dtype)  # (N, L, C)
        if ctx.needs_input_grad[2]:
            pooled = torch.bmm(weights.to(dtype), context_c)  # (N, H, C), recomputed
            flat_grad = grad_out.reshape(-1, grad_out.shape[-1])  # (N*H, D)
            grad_weight = torch.matmul(flat_grad.t(), pooled.reshape(-1, pooled.shape[-1]))
            grad_weight = grad_weight.to(weight.dtype)  # (D, C)
        return grad_weights, grad_context, grad_weight


class FactoredContext(NamedTuple):
    """The context of every layer in the factored form.

    Attributes:
        tokens (Tensor): raw context tokens ``c_i``, ``(N, L, C)``.
        context_weight (Tensor): ``P``, ``(D, C)``.
        context_bias (Tensor): ``p``, ``(D,)``.
        key_pos (Tensor or None): positional encoding of the keys, ``(1, L, D)``.
    """

    tokens: Tensor
    context_weight: Tensor
    context_bias: Tensor
    key_pos: Optional[Tensor]


def factored_attention(
    query: Tensor, context: FactoredContext, weights: AttentionWeights
) -> Tensor:
    """The standard form's attention from the raw context tokens, keys and values never formed.

    See the module docstring for the algebra. The context projection is
    folded into the query side (scores) and applied after the weighted sum
    (values), per head.

    Arguments and result as every form's (:class:`~._common.AttentionWeights`);
    ``context`` holds the raw tokens, ``P``, ``p`` and the positional encoding.
    ``b_K`` adds a per-head constant to the scores and is not used.
    """
    tokens, context_weight, context_bias, key_pos = context
    q = project_query(query, weights)  # (N, H, E)
    key_weight = key_weight_per_head(weights)  # (H, E, D)
    q_in_d = torch.einsum('nhe,hed->nhd', q, key_weight)  # (N, H, D): W_K^hT q_h
    # (P^T W_K^hT q_h) . c_i, (N, H, L), in float32 under autocast
    logits = _ProjectedScores.apply(q_in_d, tokens, context_weight)
    if key_pos is not None:
        logits = logits + float32_einsum('nhd,ld->nhl', q_in_d, key_pos[0])  # (N, H, L)
    attention, mass = softmax_weights(
        logits, q.shape[-1], weights.attn_dropout
    )  # (N, H, L), (N, H, 1)
    # P (sum_i a_hi c_i) + s_h p, (N, H, D)
    pooled = _PooledProjection.apply(attention, tokens, context_weight) + mass * context_bias
    return project_pooled_values(pooled, mass, weights)
