"""Person-context cross-attention transformer (Ning et al. 2021, section 2.2).

Shape shorthand: ``N`` persons, ``C`` backbone channels, ``D = embed_dims``,
``H`` heads of ``E = D / H`` channels, ``L = h * w`` context tokens per person.

Design: equations (1)-(3) of the paper, a **post-norm** transformer *encoder*
whose self-attention is replaced by cross-attention from the person query to
the person's context::

    Q^0 = A                                       (1)
    X^j = LN(MultiHead(Q^{j-1}, C, C) + Q^{j-1})  (2)
    Q^j = LN(FFN(X^j) + X^j)                      (3)

What changed with respect to Vaswani et al. (2017): there is one query token
per person (no self-attention), and the keys/values ``C`` are the same
projected context tokens at every layer (the context is not transformed
layer-by-layer; each layer has its own key/value projection weights, as any
multi-head attention). Inputs are linearly projected from ``C`` backbone
channels to ``D``. An optional learned 2-D positional encoding (one row and one
column embedding, summed, as in DETR's learned variant) is added to the keys
only; it is off by default because the paper's equations have none (see
``docs/model.md``).

Two exact implementations of the attention share the same parameters (the
``nn.MultiheadAttention`` of every layer is the parameter container, so
checkpoints load into either):

- ``'standard'``: the textbook order. Project the ``L`` context tokens to ``D``
  (``context_proj``), then to keys and values in every layer, score the query
  against every key, and average the values. ``O(L * C * D + layers * L * D^2)``
  multiply-adds per person. Kept as the reference.
- ``'factored'`` (default): with a single query per person the keys and values
  never have to exist. With ``P, p`` the context projection, ``W_K^h, b_K^h``
  and ``W_V^h, b_V^h`` the rows of head ``h``, ``q_h`` the projected query and
  ``c_i`` a raw context token (``C`` channels)::

      q_h . (W_K^h (P c_i + p + pos_i) + b_K^h)
          = (P^T W_K^hT q_h) . c_i + (W_K^hT q_h) . pos_i + const_h

  and the constant cancels in the softmax over ``i``. With ``a_hi`` the
  attention weights after dropout and ``s_h = sum_i a_hi`` (1 without
  dropout; dropout is linear in ``a``)::

      sum_i a_hi (W_V^h (P c_i + p) + b_V^h)
          = W_V^h (P (sum_i a_hi c_i) + s_h p) + s_h b_V^h

  per head. Per person and layer this costs ``2 H C D`` for the two products
  with ``P`` instead of ``2 L D^2`` for keys and values plus ``L C D`` once for
  the context projection (0.16 instead of 0.74 GMACs per person at the
  paper's sizes; :func:`count_macs_per_person`).

Weights folded once (inference). ``W_K^h P`` and ``W_V^h P`` (``E x C`` per
head), ``W_V^h p + b_V^h`` and the keys of the positional encoding
``W_K^h pos_i`` depend on the weights only. Formed once per weight update
(``2 D^2 C`` multiply-adds per layer, whatever the number of persons), they
bring the per-person cost of a layer's attention down to ``2 D C`` for the two
folded products, plus the query and output projections and ``2 H L C`` for the
scores and sums over the raw tokens (0.057 instead of 0.162 GMACs per person
at the paper's sizes). :class:`PersonContextTransformer` keeps them in a cache
that is used only when no gradient can reach the folded parameters (grad mode
off, or none of them requiring grad) and that is keyed on every folded
parameter's version counter, storage, dtype and device, so an in-place
optimizer step, ``load_state_dict``, ``.to()`` or a switch of ``attn_impl``
rebuilds it. The cache is a plain attribute, never part of the ``state_dict``.
With gradients, the fold is recomputed in every forward (and differentiated)
only when the batch has more persons than :func:`fold_break_even_persons`,
the ``N`` above which the one-off fold is cheaper than the per-person products
it replaces; below that the per-person factored form is used.

Under autocast (mixed precision) the attention logits and the softmax are
computed in float32 from the half-precision operands, as torch's
``scaled_dot_product_attention`` kernels accumulate them, so that large
features cannot overflow the scores.
"""

import math
from typing import Callable, List, NamedTuple, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .clip_projected_context import (
    ProjectedContext,
    clip_pooling,
    clip_scores,
    count_clip_projection_macs,
    count_per_person_projection_macs,
)
from .sparse_roi_align import SampledContext

#: Section 2.2: 3 layers, 8 heads, projection dimension 1024.
NUM_LAYERS = 3
NUM_HEADS = 8
EMBED_DIMS = 1024
#: FFN width: 4 x embed_dims, as in Vaswani et al. (2017); the paper omits it.
FFN_RATIO = 4
DROPOUT = 0.1
#: The attention implementations; both give the same outputs from the same parameters.
ATTN_IMPLS = ('factored', 'standard')
#: The default: the factored form, about 4.5x fewer multiply-adds at the paper's sizes.
DEFAULT_ATTN_IMPL = 'factored'
#: Where the factored form applies the context projection ``P`` to a
#: :class:`SampledContext`: per person (folded into the queries and values),
#: once per clip on the feature map (:mod:`.clip_projected_context`), or
#: ``'auto'``: whichever costs fewer multiply-adds for the batch at hand.
CONTEXT_PROJECTIONS = ('auto', 'per_person', 'per_clip')
_HALF_DTYPES = (torch.float16, torch.bfloat16)


def check_attn_impl(attn_impl: str) -> str:
    """Return ``attn_impl`` or raise a ``ValueError`` that lists the choices."""
    if attn_impl not in ATTN_IMPLS:
        raise ValueError(
            f'attn_impl={attn_impl!r} is not an attention implementation; use one of '
            f'{ATTN_IMPLS} (same parameters and outputs; factored is faster).'
        )
    return attn_impl


def _gets_grad(params: List[Tensor]) -> bool:
    """Whether a gradient can reach any of ``params`` (grad mode on, one requires grad)."""
    return torch.is_grad_enabled() and any(p.requires_grad for p in params)


def _float32_einsum(equation: str, *operands: Tensor) -> Tensor:
    """``torch.einsum`` with half-precision operands promoted to float32, autocast off.

    Attention logits are sums of ``E`` (or ``C``) products; in float16 they
    overflow for features of a few hundred. float64 operands stay float64.
    """
    promoted = [x.float() if x.dtype in _HALF_DTYPES else x for x in operands]
    with torch.autocast(device_type=operands[0].device.type, enabled=False):
        return torch.einsum(equation, *promoted)


def standard_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    in_proj_weight: Tensor,
    in_proj_bias: Tensor,
    num_heads: int,
    attn_dropout: Callable[[Tensor], Tensor],
) -> Tensor:
    """Multi-head attention of one query per person, keys and values computed.

    Args:
        query (Tensor): ``(N, D)``.
        key (Tensor): projected context tokens (plus positional encoding),
            ``(N, L, D)``.
        value (Tensor): projected context tokens, ``(N, L, D)``.
        in_proj_weight (Tensor): ``[W_Q; W_K; W_V]``, ``(3D, D)``.
        in_proj_bias (Tensor): ``[b_Q; b_K; b_V]``, ``(3D,)``.
        num_heads (int): ``H``.
        attn_dropout (callable): dropout applied to the attention weights.

    Returns:
        Tensor: the heads' outputs concatenated, before the output projection,
        ``(N, D)``.
    """
    n, d = query.shape
    length, head_dims = key.shape[1], d // num_heads
    w_q, w_k, w_v = in_proj_weight.chunk(3)
    b_q, b_k, b_v = in_proj_bias.chunk(3)
    q = F.linear(query, w_q, b_q).reshape(n, num_heads, head_dims)  # (N, H, E)
    k = F.linear(key, w_k, b_k).reshape(n, length, num_heads, head_dims)  # (N, L, H, E)
    v = F.linear(value, w_v, b_v).reshape(n, length, num_heads, head_dims)  # (N, L, H, E)
    logits = _float32_einsum('nhe,nlhe->nhl', q, k) / math.sqrt(head_dims)  # (N, H, L)
    weights = attn_dropout(logits.softmax(dim=-1))  # (N, H, L)
    out = torch.einsum('nhl,nlhe->nhe', weights.to(v.dtype), v)  # (N, H, E)
    return out.reshape(n, d)  # (N, D)


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
        return _float32_einsum('nhc,nlc->nhl', projected, context)  # (N, H, L)

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


def factored_attention(
    query: Tensor,
    context: Union[Tensor, ProjectedContext],
    context_weight: Tensor,
    context_bias: Tensor,
    in_proj_weight: Tensor,
    in_proj_bias: Tensor,
    num_heads: int,
    attn_dropout: Callable[[Tensor], Tensor],
    key_pos: Optional[Tensor] = None,
) -> Tensor:
    """The same attention as :func:`standard_attention`, keys and values never formed.

    See the module docstring for the algebra. The context projection is
    folded into the query side (scores) and applied after the weighted sum
    (values), per head.

    Args:
        query (Tensor): ``(N, D)``.
        context (Tensor | ProjectedContext): raw context tokens, ``(N, L, C)``,
            or the tokens already projected once per clip (then ``P`` has been
            applied and ``context_weight`` is not used).
        context_weight (Tensor): ``P``, ``(D, C)``.
        context_bias (Tensor): ``p``, ``(D,)``.
        in_proj_weight (Tensor): ``[W_Q; W_K; W_V]``, ``(3D, D)``.
        in_proj_bias (Tensor): ``[b_Q; b_K; b_V]``, ``(3D,)``.
        num_heads (int): ``H``.
        attn_dropout (callable): dropout applied to the attention weights.
        key_pos (Tensor, optional): positional encoding of the keys,
            ``(1, L, D)``.

    Returns:
        Tensor: the heads' outputs concatenated, before the output projection,
        ``(N, D)``.
    """
    n, d = query.shape
    head_dims = d // num_heads
    w_q, w_k, w_v = in_proj_weight.chunk(3)
    b_q, _, b_v = in_proj_bias.chunk(3)  # b_K adds a per-head constant to the scores
    q = F.linear(query, w_q, b_q).reshape(n, num_heads, head_dims)  # (N, H, E)
    key_weight = w_k.reshape(num_heads, head_dims, d)  # (H, E, D)
    if isinstance(context, ProjectedContext):
        # (W_K^hT q_h) . y_i, (N, H, L), float32; W_K^hT q_h is not kept for backward
        logits = clip_scores(q, key_weight, context)
        if key_pos is not None:  # q_h . (W_K^h pos_i)
            pos_keys = _positional_keys(key_pos, w_k, num_heads)  # (L, H, E)
            logits = logits + _float32_einsum('nhe,lhe->nhl', q, pos_keys)  # (N, H, L)
    else:
        q_in_d = torch.einsum('nhe,hed->nhd', q, key_weight)  # (N, H, D)
        # (P^T W_K^hT q_h) . c_i, (N, H, L), in float32 under autocast
        logits = _ProjectedScores.apply(q_in_d, context, context_weight)
        if key_pos is not None:
            logits = logits + _float32_einsum('nhd,ld->nhl', q_in_d, key_pos[0])  # (N, H, L)
    weights = attn_dropout((logits / math.sqrt(head_dims)).softmax(dim=-1))  # (N, H, L)
    mass = weights.sum(dim=-1, keepdim=True)  # (N, H, 1): s_h, 1 without dropout
    # P (sum_i a_hi c_i) + s_h p, (N, H, D)
    if isinstance(context, ProjectedContext):
        pooled = clip_pooling(weights, context) + mass * context_bias
    else:
        pooled = _PooledProjection.apply(weights, context, context_weight) + mass * context_bias
    out = torch.einsum('nhd,hed->nhe', pooled, w_v.reshape(num_heads, head_dims, d))  # (N, H, E)
    out = out + mass * b_v.reshape(num_heads, head_dims)  # (N, H, E)
    return out.reshape(n, d)  # (N, D)


class FoldedLayerWeights(NamedTuple):
    """One layer's attention weights with the context projection folded in.

    Attributes:
        key (Tensor): ``W_K^h P`` per head, ``(H, E, C)``.
        value (Tensor): ``W_V^h P`` per head, ``(H, E, C)``.
        value_bias (Tensor): ``W_V^h p + b_V^h`` per head, ``(H, E)``.
        pos_key (Tensor or None): ``W_K^h pos_i`` per head, ``(L, H, E)``.
    """

    key: Tensor
    value: Tensor
    value_bias: Tensor
    pos_key: Optional[Tensor]


def fold_layer_weights(
    context_weight: Tensor,
    context_bias: Tensor,
    in_proj_weight: Tensor,
    in_proj_bias: Tensor,
    num_heads: int,
    key_pos: Optional[Tensor] = None,
) -> FoldedLayerWeights:
    """Fold the context projection (and the positional encoding) into one layer's K and V.

    ``2 D^2 C`` multiply-adds (plus ``D^2`` for the bias and ``L D^2`` for the
    positional keys), independent of the number of persons. Differentiable.

    Args:
        context_weight (Tensor): ``P``, ``(D, C)``.
        context_bias (Tensor): ``p``, ``(D,)``.
        in_proj_weight (Tensor): ``[W_Q; W_K; W_V]``, ``(3D, D)``.
        in_proj_bias (Tensor): ``[b_Q; b_K; b_V]``, ``(3D,)``.
        num_heads (int): ``H``.
        key_pos (Tensor, optional): positional encoding of the keys, ``(1, L, D)``.

    Returns:
        FoldedLayerWeights: the folded tensors, in the parameters' dtype.
    """
    d, c = context_weight.shape
    head_dims = d // num_heads
    _, w_k, w_v = in_proj_weight.chunk(3)
    _, _, b_v = in_proj_bias.chunk(3)  # b_K adds a per-head constant to the scores
    key = torch.matmul(w_k, context_weight).reshape(num_heads, head_dims, c)  # (H, E, C)
    value = torch.matmul(w_v, context_weight).reshape(num_heads, head_dims, c)  # (H, E, C)
    value_bias = (F.linear(context_bias, w_v) + b_v).reshape(num_heads, head_dims)  # (H, E)
    pos_key = None if key_pos is None else _positional_keys(key_pos, w_k, num_heads)
    return FoldedLayerWeights(key, value, value_bias, pos_key)


def _positional_keys(key_pos: Tensor, key_weight: Tensor, num_heads: int) -> Tensor:
    """``W_K^h pos_i`` for every token and head: ``(1, L, D)``, ``(D, D)`` -> ``(L, H, E)``."""
    keys = F.linear(key_pos[0], key_weight)  # (L, D)
    return keys.reshape(keys.shape[0], num_heads, -1)


def folded_attention(
    query: Tensor,
    context: Tensor,
    folded: FoldedLayerWeights,
    in_proj_weight: Tensor,
    in_proj_bias: Tensor,
    num_heads: int,
    attn_dropout: Callable[[Tensor], Tensor],
) -> Tensor:
    """The same attention as :func:`factored_attention`, from folded weights.

    Per person and head: ``u_h = (W_K^h P)^T q_h`` (``E C``), the scores
    ``u_h . c_i + q_h . (W_K^h pos_i)``, the pooled token
    ``z_h = sum_i a_hi c_i`` and the output ``(W_V^h P) z_h + s_h (W_V^h p + b_V^h)``.

    Args:
        query (Tensor): ``(N, D)``.
        context (Tensor): raw context tokens, ``(N, L, C)``.
        folded (FoldedLayerWeights): from :func:`fold_layer_weights`.
        in_proj_weight (Tensor): ``[W_Q; W_K; W_V]``, ``(3D, D)`` (``W_Q`` is used).
        in_proj_bias (Tensor): ``[b_Q; b_K; b_V]``, ``(3D,)`` (``b_Q`` is used).
        num_heads (int): ``H``.
        attn_dropout (callable): dropout applied to the attention weights.

    Returns:
        Tensor: the heads' outputs concatenated, before the output projection,
        ``(N, D)``.
    """
    n, d = query.shape
    head_dims = d // num_heads
    w_q = in_proj_weight[:d]
    b_q = in_proj_bias[:d]
    q = F.linear(query, w_q, b_q).reshape(n, num_heads, head_dims)  # (N, H, E)
    projected = torch.einsum('nhe,hec->nhc', q, folded.key)  # (N, H, C)
    logits = _float32_einsum(
        'nhc,nlc->nhl', projected, context
    )  # (N, H, L), float32 under autocast
    if folded.pos_key is not None:
        logits = logits + _float32_einsum('nhe,lhe->nhl', q, folded.pos_key)  # (N, H, L)
    weights = attn_dropout((logits / math.sqrt(head_dims)).softmax(dim=-1))  # (N, H, L)
    mass = weights.sum(dim=-1, keepdim=True)  # (N, H, 1): s_h, 1 without dropout
    pooled = torch.bmm(weights.to(context.dtype), context)  # (N, H, C)
    out = torch.einsum('nhc,hec->nhe', pooled, folded.value)  # (N, H, E)
    out = out + mass * folded.value_bias  # (N, H, E)
    return out.reshape(n, d)  # (N, D)


class LearnedPositionalEncoding2D(nn.Module):
    """Learned 2-D positional encoding of an ``h x w`` token grid.

    ``pos[r * w + c] = row[r] + col[c]``: ``h + w`` learned vectors instead of
    ``h * w``, so the encoding factorises into "how far above/below" and "how
    far left/right" of the person box centre.

    Args:
        grid_size (tuple[int, int]): ``(h, w)``.
        embed_dims (int): ``D``.
    """

    def __init__(self, grid_size: Tuple[int, int], embed_dims: int) -> None:
        super().__init__()
        self.grid_size = tuple(grid_size)
        self.row_embed = nn.Embedding(self.grid_size[0], embed_dims)
        self.col_embed = nn.Embedding(self.grid_size[1], embed_dims)

    def reset_parameters(self) -> None:
        nn.init.uniform_(self.row_embed.weight)
        nn.init.uniform_(self.col_embed.weight)

    def forward(self) -> Tensor:
        """Returns the encoding, ``(1, h*w, D)``."""
        h, w = self.grid_size
        pos = self.row_embed.weight[:, None, :] + self.col_embed.weight[None, :, :]  # (h, w, D)
        return pos.reshape(1, h * w, -1)  # (1, h*w, D)


class CrossAttentionLayer(nn.Module):
    """One post-norm cross-attention layer, equations (2) and (3).

    ``attn`` (an ``nn.MultiheadAttention``) holds the query/key/value and output
    projections; :meth:`attend_standard` and :meth:`attend_factored` compute
    the same attention from them, and :meth:`forward` applies the residual
    connections, LayerNorms and the FFN.

    Args:
        embed_dims (int): ``D``.
        num_heads (int): attention heads; ``D`` must be divisible by it.
        feedforward_channels (int): hidden width of the FFN.
        dropout (float): dropout on the attention weights, on the residual
            branches and inside the FFN.
    """

    def __init__(
        self, embed_dims: int, num_heads: int, feedforward_channels: int, dropout: float
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=dropout, batch_first=True)
        self.attn_drop = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.ffn = nn.Sequential(
            nn.Linear(embed_dims, feedforward_channels),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(feedforward_channels, embed_dims),
        )
        self.norm2 = nn.LayerNorm(embed_dims)
        self.drop_attn = nn.Dropout(dropout)
        self.drop_ffn = nn.Dropout(dropout)

    def attend_standard(self, query: Tensor, key: Tensor, value: Tensor) -> Tensor:
        """``MultiHead(Q^{j-1}, C, C)`` from projected context tokens.

        Args:
            query (Tensor): ``Q^{j-1}``, ``(N, D)``.
            key (Tensor): projected context tokens (plus positional encoding),
                ``(N, L, D)``.
            value (Tensor): projected context tokens, ``(N, L, D)``.

        Returns:
            Tensor: ``(N, D)``.
        """
        heads = standard_attention(
            query,
            key,
            value,
            self.attn.in_proj_weight,
            self.attn.in_proj_bias,
            self.num_heads,
            self.attn_drop,
        )  # (N, D)
        return self.attn.out_proj(heads)  # (N, D)

    def attend_factored(
        self,
        query: Tensor,
        context: Union[Tensor, ProjectedContext],
        context_proj: nn.Linear,
        key_pos: Optional[Tensor] = None,
    ) -> Tensor:
        """``MultiHead(Q^{j-1}, C, C)`` from the raw context tokens (factored form).

        Args:
            query (Tensor): ``Q^{j-1}``, ``(N, D)``.
            context (Tensor | ProjectedContext): raw context tokens, ``(N, L, C)``,
                or the tokens projected once per clip.
            context_proj (nn.Linear): the ``C -> D`` context projection, folded in
                (only its bias for a :class:`ProjectedContext`).
            key_pos (Tensor, optional): positional encoding of the keys, ``(1, L, D)``.

        Returns:
            Tensor: ``(N, D)``.
        """
        heads = factored_attention(
            query,
            context,
            context_proj.weight,
            context_proj.bias,
            self.attn.in_proj_weight,
            self.attn.in_proj_bias,
            self.num_heads,
            self.attn_drop,
            key_pos,
        )  # (N, D)
        return self.attn.out_proj(heads)  # (N, D)

    def attend_folded(self, query: Tensor, context: Tensor, folded: FoldedLayerWeights) -> Tensor:
        """``MultiHead(Q^{j-1}, C, C)`` from the raw context tokens and folded weights.

        Args:
            query (Tensor): ``Q^{j-1}``, ``(N, D)``.
            context (Tensor): raw context tokens, ``(N, L, C)``.
            folded (FoldedLayerWeights): this layer's weights with the context
                projection folded in (:func:`fold_layer_weights`).

        Returns:
            Tensor: ``(N, D)``.
        """
        heads = folded_attention(
            query,
            context,
            folded,
            self.attn.in_proj_weight,
            self.attn.in_proj_bias,
            self.num_heads,
            self.attn_drop,
        )  # (N, D)
        return self.attn.out_proj(heads)  # (N, D)

    def forward(self, query: Tensor, attended: Tensor) -> Tensor:
        """Post-norm update of the person query.

        Args:
            query (Tensor): ``Q^{j-1}``, ``(N, D)``.
            attended (Tensor): ``MultiHead(Q^{j-1}, C, C)``, ``(N, D)``.

        Returns:
            Tensor: ``Q^j``, ``(N, D)``.
        """
        x = self.norm1(query + self.drop_attn(attended))  # eq. (2)
        return self.norm2(x + self.drop_ffn(self.ffn(x)))  # eq. (3)


class PersonContextTransformer(nn.Module):
    """Cross-attention transformer from a person feature to its context tokens.

    A plain ``nn.Module`` (no registry), reusable outside mmaction2.

    Args:
        in_channels (int): ``C``, channels of person features and context tokens.
        embed_dims (int): ``D`` (1024 in the paper).
        num_layers (int): ``D_layers`` in eq. (1)-(3) (3 in the paper).
        num_heads (int): heads per layer (8 in the paper).
        feedforward_channels (int, optional): FFN width; ``FFN_RATIO * D`` when
            None.
        dropout (float): see :class:`CrossAttentionLayer`.
        context_size (tuple[int, int], optional): ``(h, w)`` of the context grid;
            needed only with ``with_pos_encoding``.
        with_pos_encoding (bool): add a learned 2-D positional encoding to the
            keys (off by default, as in the paper).
        attn_impl (str): ``'factored'`` (default, fewer multiply-adds and less
            activation memory) or ``'standard'`` (keys and values computed, the
            reference); same parameters, same outputs, so a checkpoint of one
            loads into the other. Settable after construction. Without
            gradients the factored form uses its folded weights, cached (see
            the module docstring).
        context_projection (str): for context given as a
            :class:`SampledContext` (``ContextRoIExtractor(..., lazy_context=True)``), where the
            factored form applies the context projection: ``'per_person'``,
            ``'per_clip'`` (once on the feature map,
            :mod:`.clip_projected_context`) or ``'auto'`` (default: the one
            with fewer multiply-adds for the batch, see
            :meth:`projects_per_clip`). Same outputs either way; context given
            as a tensor of tokens is always projected per person.
    """

    def __init__(
        self,
        in_channels: int,
        embed_dims: int = EMBED_DIMS,
        num_layers: int = NUM_LAYERS,
        num_heads: int = NUM_HEADS,
        feedforward_channels: Optional[int] = None,
        dropout: float = DROPOUT,
        context_size: Optional[Tuple[int, int]] = None,
        with_pos_encoding: bool = False,
        attn_impl: str = DEFAULT_ATTN_IMPL,
        context_projection: str = 'auto',
    ) -> None:
        super().__init__()
        if context_projection not in CONTEXT_PROJECTIONS:
            raise ValueError(
                f'context_projection={context_projection!r} is not one of '
                f'{CONTEXT_PROJECTIONS} (same outputs; auto picks the cheaper).'
            )
        if embed_dims % num_heads != 0:
            raise ValueError(
                f'embed_dims={embed_dims} is not divisible by num_heads={num_heads}; '
                'every head needs embed_dims / num_heads channels.'
            )
        if num_layers < 1:
            raise ValueError(f'num_layers must be >= 1, got {num_layers}.')
        if feedforward_channels is None:
            feedforward_channels = FFN_RATIO * embed_dims
        self.in_channels = in_channels
        self.embed_dims = embed_dims
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.feedforward_channels = feedforward_channels
        self.attn_impl = check_attn_impl(attn_impl)
        self.context_projection = context_projection
        self.person_proj = nn.Linear(in_channels, embed_dims)
        self.context_proj = nn.Linear(in_channels, embed_dims)
        self.layers = nn.ModuleList(
            CrossAttentionLayer(embed_dims, num_heads, feedforward_channels, dropout)
            for _ in range(num_layers)
        )
        self.pos_encoding = None
        if with_pos_encoding:
            if context_size is None:
                raise ValueError('with_pos_encoding=True needs context_size=(h, w).')
            self.pos_encoding = LearnedPositionalEncoding2D(context_size, embed_dims)
        # (key, folded weights of every layer, storages held): a plain attribute, never
        # in the state_dict
        self._fold_cache: Optional[tuple] = None
        self.init_weights()

    def init_weights(self) -> None:
        """Xavier-uniform linear weights, zero biases (Vaswani et al.; DETR)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.MultiheadAttention):
                module._reset_parameters()
            elif isinstance(module, nn.LayerNorm):
                module.reset_parameters()
        if self.pos_encoding is not None:
            self.pos_encoding.reset_parameters()

    def forward(self, person: Tensor, context: Union[Tensor, SampledContext]) -> Tensor:
        """Relate every person to its own context.

        Args:
            person (Tensor): ``A``, ``(N, C)``.
            context (Tensor | SampledContext): context tokens, ``(N, L, C)``, or
                their two sparse-product factors (``ContextRoIExtractor(..., lazy_context=True)``).

        Returns:
            Tensor: ``Q^{num_layers}``, the person representation, ``(N, D)``.
        """
        sampled = context if isinstance(context, SampledContext) else None
        channels = sampled.channels if sampled is not None else context.shape[-1]
        num_tokens = sampled.num_tokens if sampled is not None else context.shape[1]
        if person.shape[-1] != self.in_channels or channels != self.in_channels:
            raise ValueError(
                f'PersonContextTransformer: got person features with {person.shape[-1]} '
                f'and context tokens with {channels} channels, but '
                f'in_channels={self.in_channels}; set the head in_channels to the '
                'backbone channel count.'
            )
        key_pos = None
        if self.pos_encoding is not None:
            if self.pos_encoding.grid_size[0] * self.pos_encoding.grid_size[1] != num_tokens:
                raise ValueError(
                    f'positional encoding is for a {self.pos_encoding.grid_size} grid but '
                    f'got {num_tokens} context tokens.'
                )
            key_pos = self.pos_encoding()  # (1, L, D)
        query = self.person_proj(person)  # Q^0 = A, (N, D)
        if sampled is not None and self.projects_per_clip(sampled):
            return self._forward_clip_projected(query, sampled, key_pos)
        if sampled is not None:
            context = sampled.tokens()  # (N, L, C)
        if check_attn_impl(self.attn_impl) == 'factored':
            folded = self._folded_weights(person.shape[0])
            if folded is not None:
                for layer, layer_folded in zip(self.layers, folded):
                    query = layer(query, layer.attend_folded(query, context, layer_folded))
                return query
            for layer in self.layers:
                attended = layer.attend_factored(query, context, self.context_proj, key_pos)
                query = layer(query, attended)  # (N, D)
            return query
        value = self.context_proj(context)  # (N, L, D)
        key = value if key_pos is None else value + key_pos  # (N, L, D)
        for layer in self.layers:
            query = layer(query, layer.attend_standard(query, key, value))  # (N, D)
        return query

    def projects_per_clip(self, sampled: SampledContext) -> bool:
        """Whether this forward applies ``P`` once per clip (see ``context_projection``).

        ``'auto'`` picks the form with fewer multiply-adds for this batch
        (:meth:`count_macs`), with gradients when grad mode is on and the
        folded parameters require them. The standard implementation never
        projects per clip.
        """
        if check_attn_impl(self.attn_impl) == 'standard':
            return False
        if self.context_projection != 'auto':
            return self.context_projection == 'per_clip'
        positions = sampled.table.shape[0]
        macs = self._context_form_macs(
            sampled.num_rois, sampled.num_tokens, positions, _gets_grad(self._folded_parameters())
        )
        return macs['per_clip'] < macs['per_person']

    def _context_form_macs(
        self, num_persons: int, num_tokens: int, num_positions: int, with_grad: bool
    ) -> dict:
        """Forward multiply-adds of the whole transformer for ``N`` persons, by form.

        ``per_person``: :func:`count_macs_per_person`, with the folded weights
        where the forward would use them (no gradients: the cached fold, not
        counted; with gradients above :func:`fold_break_even_persons`: the
        fold counted). ``per_clip``: the per-person products with ``P``
        replaced by one projection of the ``R = num_positions`` map positions
        (:func:`count_clip_projection_macs`).
        """
        sizes = dict(
            in_channels=self.in_channels,
            num_tokens=num_tokens,
            embed_dims=self.embed_dims,
            num_layers=self.num_layers,
            feedforward_channels=self.feedforward_channels,
            num_heads=self.num_heads,
            with_pos_encoding=self.pos_encoding is not None,
        )
        folded = not with_grad or num_persons > self._fold_break_even()
        per_person = num_persons * count_macs_per_person(**sizes, folded_weights=folded)
        if with_grad and folded:  # a fresh, differentiable fold in this forward
            per_person += count_fold_macs(
                self.in_channels,
                num_tokens,
                self.embed_dims,
                self.num_layers,
                self.pos_encoding is not None,
            )
        shape = dict(
            in_channels=self.in_channels,
            embed_dims=self.embed_dims,
            num_persons=num_persons,
            num_tokens=num_tokens,
            num_heads=self.num_heads,
            num_layers=self.num_layers,
        )
        per_clip = (
            num_persons * count_macs_per_person(**sizes)
            - count_per_person_projection_macs(**shape)
            + count_clip_projection_macs(num_positions=num_positions, **shape)
        )
        return dict(per_person=per_person, per_clip=per_clip)

    def count_macs(
        self, num_persons: int, num_tokens: int, num_positions: int, with_grad: bool
    ) -> int:
        """Forward multiply-adds of this transformer for a batch, in the form it would use.

        Args:
            num_persons (int): ``N``.
            num_tokens (int): ``L``.
            num_positions (int): ``R``, feature-map positions of the batch
                (``B * H * W``), for context given as a :class:`SampledContext`.
            with_grad (bool): gradients for the parameters (training).

        Returns:
            int: multiply-adds of the matrix products (as
            :func:`count_macs_per_person`; the sparse RoIAlign product and the
            one-off cached fold are not counted).
        """
        if check_attn_impl(self.attn_impl) == 'standard':
            return num_persons * count_macs_per_person(
                self.in_channels,
                num_tokens,
                embed_dims=self.embed_dims,
                num_layers=self.num_layers,
                feedforward_channels=self.feedforward_channels,
                num_heads=self.num_heads,
                attn_impl='standard',
                with_pos_encoding=self.pos_encoding is not None,
            )
        macs = self._context_form_macs(num_persons, num_tokens, num_positions, with_grad)
        if self.context_projection == 'auto':
            return min(macs.values())
        return macs[self.context_projection]

    def _forward_clip_projected(
        self, query: Tensor, sampled: SampledContext, key_pos: Optional[Tensor]
    ) -> Tensor:
        """The layers with ``P`` applied once to the feature map (:mod:`.clip_projected_context`).

        Args:
            query (Tensor): ``Q^0``, ``(N, D)``.
            sampled (SampledContext): the context's sparse-product factors.
            key_pos (Tensor, optional): positional encoding of the keys, ``(1, L, D)``.

        Returns:
            Tensor: ``Q^{num_layers}``, ``(N, D)``.
        """
        projected_map = F.linear(sampled.table, self.context_proj.weight)  # (R, D), V P^T
        context = ProjectedContext(sampled, projected_map)
        try:
            for layer in self.layers:
                attended = layer.attend_factored(query, context, self.context_proj, key_pos)
                query = layer(query, attended)  # (N, D)
        finally:
            context.release()  # the tokens are formed again in a backward pass
        return query

    def _folded_parameters(self) -> List[Tensor]:
        """Every parameter the folded weights are computed from."""
        params = [self.context_proj.weight, self.context_proj.bias]
        for layer in self.layers:
            params += [layer.attn.in_proj_weight, layer.attn.in_proj_bias]
        if self.pos_encoding is not None:
            params += [self.pos_encoding.row_embed.weight, self.pos_encoding.col_embed.weight]
        return params

    def _compute_folded_weights(self) -> List[FoldedLayerWeights]:
        key_pos = None if self.pos_encoding is None else self.pos_encoding()  # (1, L, D)
        return [
            fold_layer_weights(
                self.context_proj.weight,
                self.context_proj.bias,
                layer.attn.in_proj_weight,
                layer.attn.in_proj_bias,
                self.num_heads,
                key_pos,
            )
            for layer in self.layers
        ]

    def _folded_weights(self, num_persons: int) -> Optional[List[FoldedLayerWeights]]:
        """The folded weights to use for this forward, or None for the per-person form.

        Without gradients for the folded parameters, the cached fold (rebuilt
        when any of them changed). With gradients, a fresh, differentiable
        fold when ``num_persons`` exceeds :func:`fold_break_even_persons`,
        else None.
        """
        params = self._folded_parameters()
        if _gets_grad(params):
            if num_persons > self._fold_break_even():
                return self._compute_folded_weights()
            return None
        # The key names each parameter's address; the cache holds the storages, so
        # that a freed parameter's address cannot be reused by a new one while cached.
        key = (self.attn_impl,) + tuple(
            (p._version, p.data_ptr(), p.dtype, p.device, tuple(p.shape)) for p in params
        )
        cached = self._fold_cache
        if cached is None or cached[0] != key:
            self._fold_cache = None
            # normal tensors even under inference_mode; autocast off: the parameters' dtype
            with torch.inference_mode(False), torch.no_grad():
                with torch.autocast(device_type=params[0].device.type, enabled=False):
                    folded = self._compute_folded_weights()
            held = [p.untyped_storage() for p in params]
            cached = (key, folded, held)
            self._fold_cache = cached
        return cached[1]

    def _fold_break_even(self) -> float:
        """:func:`fold_break_even_persons` for this transformer's sizes."""
        return fold_break_even_persons(
            self.in_channels,
            self.embed_dims,
            self.num_heads,
            self._num_tokens_for_cost(),
            with_pos_encoding=self.pos_encoding is not None,
        )

    def _num_tokens_for_cost(self) -> int:
        """``L`` for the break-even count: it cancels there without the positional encoding."""
        if self.pos_encoding is None:
            return 1
        return self.pos_encoding.grid_size[0] * self.pos_encoding.grid_size[1]

    def clear_fold_cache(self) -> None:
        """Drop the cached folded weights (they are rebuilt on the next forward that uses them)."""
        self._fold_cache = None

    def _apply(self, fn, *args, **kwargs):
        self._fold_cache = None  # .to(), .double(), .cuda(): the fold is rebuilt
        return super()._apply(fn, *args, **kwargs)

    def extra_repr(self) -> str:
        return (
            f'in_channels={self.in_channels}, embed_dims={self.embed_dims}, '
            f'num_layers={self.num_layers}, num_heads={self.num_heads}, '
            f'feedforward_channels={self.feedforward_channels}, '
            f'with_pos_encoding={self.pos_encoding is not None}, attn_impl={self.attn_impl!r}, '
            f'context_projection={self.context_projection!r}'
        )


def count_macs_per_person(
    in_channels: int,
    num_tokens: int,
    embed_dims: int = EMBED_DIMS,
    num_layers: int = NUM_LAYERS,
    feedforward_channels: Optional[int] = None,
    num_heads: int = NUM_HEADS,
    attn_impl: str = DEFAULT_ATTN_IMPL,
    with_pos_encoding: bool = False,
    folded_weights: bool = False,
) -> int:
    """Multiply-adds of :class:`PersonContextTransformer` for one person (forward).

    Counts the matrix products (projections, attention, FFN); softmax,
    LayerNorm, biases and the dropout mass ``s_h`` are lower-order and left
    out. At the paper's sizes (``C = 2304``, ``L = 81``): 0.735 G standard,
    0.162 G factored (training, per-person products with ``P``), 0.057 G
    factored with the folded weights (inference: the one-off fold,
    :func:`count_fold_macs`, is not included).

    Args:
        in_channels (int): ``C``.
        num_tokens (int): ``L = h * w``.
        embed_dims (int): ``D``.
        num_layers (int): layers.
        feedforward_channels (int, optional): FFN width, ``4 * D`` by default.
        num_heads (int): ``H`` (the factored form's cost depends on it).
        attn_impl (str): ``'factored'`` or ``'standard'``.
        with_pos_encoding (bool): the positional encoding's scores (factored
            form; in the standard form it is an addition).
        folded_weights (bool): the factored form with the context projection
            folded into the weights (:func:`fold_layer_weights`), as used
            without gradients (cached) or above :func:`fold_break_even_persons`.

    Returns:
        int: multiply-adds.
    """
    if feedforward_channels is None:
        feedforward_channels = FFN_RATIO * embed_dims
    c, d, length = in_channels, embed_dims, num_tokens
    ffn = 2 * d * feedforward_channels
    if check_attn_impl(attn_impl) == 'standard':
        if folded_weights:
            raise ValueError(
                "count_macs_per_person: folded_weights=True is a form of attn_impl='factored' "
                "only; pass attn_impl='factored' or folded_weights=False."
            )
        macs = c * d * (1 + length)  # person and context projections
        per_layer = (
            d * d  # query projection
            + 2 * length * d * d  # key and value projections of the context
            + 2 * length * d  # q.k and attention-weighted sum of values
            + d * d  # output projection
            + ffn
        )
        return macs + num_layers * per_layer
    if folded_weights:
        per_layer = (
            d * d  # query projection
            + c * d  # (W_K^h P)^T q_h for all heads
            + 2 * num_heads * length * c  # scores against and weighted sum of the raw tokens
            + c * d  # (W_V^h P) z_h for all heads
            + d * d  # output projection
            + ffn
            + (length * d if with_pos_encoding else 0)  # q_h . (W_K^h pos_i)
        )
        return c * d + num_layers * per_layer
    per_layer = (
        d * d  # query projection
        + d * d  # W_K^hT q_h for all heads
        + 2 * num_heads * c * d  # P^T (...) for the scores and P (...) for the values
        + 2 * num_heads * length * c  # scores against and weighted sum of the raw tokens
        + d * d  # W_V^h for all heads
        + d * d  # output projection
        + ffn
        + (num_heads * length * d if with_pos_encoding else 0)  # positional scores
    )
    return c * d + num_layers * per_layer


def count_fold_macs(
    in_channels: int,
    num_tokens: int,
    embed_dims: int = EMBED_DIMS,
    num_layers: int = NUM_LAYERS,
    with_pos_encoding: bool = False,
) -> int:
    """Multiply-adds of folding the weights once (:func:`fold_layer_weights`, every layer).

    ``W_K P`` and ``W_V P`` (``2 D^2 C``), ``W_V p`` (``D^2``) and, with the
    positional encoding, ``W_K pos`` (``L D^2``) per layer: paid once per
    weight update, whatever the number of persons.
    """
    c, d = in_channels, embed_dims
    per_layer = 2 * d * d * c + d * d + (num_tokens * d * d if with_pos_encoding else 0)
    return num_layers * per_layer


def fold_break_even_persons(
    in_channels: int,
    embed_dims: int = EMBED_DIMS,
    num_heads: int = NUM_HEADS,
    num_tokens: int = 1,
    num_layers: int = NUM_LAYERS,
    with_pos_encoding: bool = False,
) -> float:
    """Persons per forward above which folding the weights in the forward is cheaper.

    ``count_fold_macs / (per-person factored - per-person folded)``, from
    :func:`count_fold_macs` and :func:`count_macs_per_person`; the backward
    pass of both sides scales alike (two products per product). ``L`` cancels
    without the positional encoding. About 138 at the paper's sizes
    (``C = 2304``, ``D = 1024``, 8 heads); ``inf`` if folding saved nothing
    per person.
    """
    kwargs = dict(
        in_channels=in_channels,
        num_tokens=num_tokens,
        embed_dims=embed_dims,
        num_layers=num_layers,
        num_heads=num_heads,
        attn_impl='factored',
        with_pos_encoding=with_pos_encoding,
    )
    saving = count_macs_per_person(**kwargs) - count_macs_per_person(**kwargs, folded_weights=True)
    if saving <= 0:
        return math.inf
    fold = count_fold_macs(in_channels, num_tokens, embed_dims, num_layers, with_pos_encoding)
    return fold / saving


__all__ = [
    'ATTN_IMPLS',
    'CONTEXT_PROJECTIONS',
    'CrossAttentionLayer',
    'FoldedLayerWeights',
    'LearnedPositionalEncoding2D',
    'PersonContextTransformer',
    'count_fold_macs',
    'count_macs_per_person',
    'factored_attention',
    'fold_break_even_persons',
    'fold_layer_weights',
    'folded_attention',
    'standard_attention',
]
