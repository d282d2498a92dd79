"""The folded form of the person-context attention, and the cache of its weights (private).

Shape shorthand: ``N`` persons, ``C`` backbone channels, ``D = embed_dims``,
``H`` heads of ``E = D / H`` channels, ``L`` context tokens per person.

In the factored form (:mod:`._factored`) the products ``W_K^h P`` and
``W_V^h P`` (``E x C`` per head), ``W_V^h p + b_V^h`` and the keys of the
positional encoding ``W_K^h pos_i`` depend on the weights only. Formed once
per weight update (``2 D^2 C`` multiply-adds per layer, whatever the number
of persons), they bring the per-person cost of a layer's attention down to
``2 D C`` for the two folded products, plus the query and output projections
and ``2 H L C`` for the scores and sums over the raw tokens (0.057 instead of
0.162 GMACs per person at the paper's sizes)::

    scores:  q_h . (W_K^h P) c_i  +  q_h . (W_K^h pos_i)
    values:  (W_V^h P) (sum_i a_hi c_i) + s_h (W_V^h p + b_V^h)

:class:`FoldCache` keeps them for forwards in which no gradient can reach
the folded parameters, keyed on every folded parameter's version counter,
storage, dtype and device, so an in-place optimizer step,
``load_state_dict`` or ``.to()`` rebuilds it. With gradients the fold is
recomputed in the forward and differentiated (above the break-even of
:func:`~.cost_model.fold_break_even_persons`).
"""

from typing import Callable, List, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import (
    AttentionWeights,
    float32_einsum,
    positional_keys,
    project_query,
    softmax_weights,
)


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
    pos_key = None
    if key_pos is not None:
        pos_key = positional_keys(key_pos, w_k, num_heads)  # (L, H, E)
    return FoldedLayerWeights(key, value, value_bias, pos_key)


class FoldedContext(NamedTuple):
    """The context of one layer in the folded form: raw tokens and that layer's folded weights.

    Attributes:
        tokens (Tensor): raw context tokens, ``(N, L, C)``.
        folded (FoldedLayerWeights): the layer's weights with ``P`` folded in.
    """

    tokens: Tensor
    folded: FoldedLayerWeights


def folded_attention(query: Tensor, context: FoldedContext, weights: AttentionWeights) -> Tensor:
    """The factored form's attention from folded weights.

    Per person and head: ``u_h = (W_K^h P)^T q_h`` (``E C``), the scores
    ``u_h . c_i + q_h . (W_K^h pos_i)``, the pooled token
    ``z_h = sum_i a_hi c_i`` and the output ``(W_V^h P) z_h + s_h (W_V^h p + b_V^h)``.

    Arguments and result as every form's (:class:`~._common.AttentionWeights`;
    only ``W_Q`` and ``b_Q`` are read); ``context`` holds the raw tokens and the
    layer's folded weights (:func:`fold_layer_weights`).
    """
    n, d = query.shape
    tokens, folded = context
    q = project_query(query, weights)  # (N, H, E)
    projected = torch.einsum('nhe,hec->nhc', q, folded.key)  # (N, H, C)
    # (N, H, L), float32 under autocast
    logits = float32_einsum('nhc,nlc->nhl', projected, tokens)
    if folded.pos_key is not None:
        logits = logits + float32_einsum('nhe,lhe->nhl', q, folded.pos_key)  # (N, H, L)
    attention, mass = softmax_weights(logits, q.shape[-1], weights.attn_dropout)  # (N, H, L)
    pooled = torch.bmm(attention.to(tokens.dtype), tokens)  # (N, H, C)
    out = torch.einsum('nhc,hec->nhe', pooled, folded.value)  # (N, H, E)
    out = out + mass * folded.value_bias  # (N, H, E)
    return out.reshape(n, d)  # (N, D)


class FoldCache:
    """The folded weights of every layer, formed once and kept while the parameters stay.

    The key names each folded parameter's version counter (bumped by in-place
    optimizer steps and ``load_state_dict``), address, dtype, device and
    shape; the entry holds the parameters' storages, so that a freed
    parameter's address cannot be reused by a new one while cached. A plain
    object, never part of a ``state_dict``.
    """

    def __init__(self) -> None:
        self._entry: Optional[tuple] = None  # (key, folded weights, storages held)

    @property
    def folded(self) -> Optional[List[FoldedLayerWeights]]:
        """The cached folded weights of every layer, or None when empty."""
        return None if self._entry is None else self._entry[1]

    def clear(self) -> None:
        """Drop the entry (rebuilt by the next :meth:`get`)."""
        self._entry = None

    def get(
        self, params: List[Tensor], fold: Callable[[], List[FoldedLayerWeights]]
    ) -> List[FoldedLayerWeights]:
        """The folded weights of ``params``: the cached ones, or ``fold()`` when any changed.

        ``fold`` runs without autograd history (normal tensors even under
        ``inference_mode``, so that they are usable with autograd later) and
        with autocast off (in the parameters' dtype).
        """
        key = tuple((p._version, p.data_ptr(), p.dtype, p.device, tuple(p.shape)) for p in params)
        if self._entry is None or self._entry[0] != key:
            self._entry = None
            with torch.inference_mode(False), torch.no_grad():
                with torch.autocast(device_type=params[0].device.type, enabled=False):
                    folded = fold()
            self._entry = (key, folded, [p.untyped_storage() for p in params])
        return self._entry[1]
