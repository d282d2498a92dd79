"""The standard form of the person-context attention: keys and values computed (private).

Shape shorthand: ``N`` persons, ``D = embed_dims``, ``H`` heads of
``E = D / H`` channels, ``L`` context tokens per person.

The textbook order (Vaswani et al. 2017, eq. (1) and section 3.2.2): the
projected context tokens are projected again to keys and values in every
layer, the query is scored against every key and the values are averaged.
``O(layers * L * D^2)`` multiply-adds per person; kept as the reference the
other forms are tested against.
"""

import math
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import float32_einsum


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
    logits = float32_einsum('nhe,nlhe->nhl', q, k) / math.sqrt(head_dims)  # (N, H, L)
    weights = attn_dropout(logits.softmax(dim=-1))  # (N, H, L)
    out = torch.einsum('nhl,nlhe->nhe', weights.to(v.dtype), v)  # (N, H, E)
    return out.reshape(n, d)  # (N, D)


class StandardContext(NamedTuple):
    """The context of every layer in the standard form: projected tokens as keys and values.

    Attributes:
        key (Tensor): ``P c_i + p + pos_i``, ``(N, L, D)``.
        value (Tensor): ``P c_i + p``, ``(N, L, D)``.
    """

    key: Tensor
    value: Tensor

    def attend(
        self,
        query: Tensor,
        in_proj_weight: Tensor,
        in_proj_bias: Tensor,
        num_heads: int,
        attn_dropout: Callable[[Tensor], Tensor],
    ) -> Tensor:
        """The heads' outputs, ``(N, D)`` (:func:`standard_attention`)."""
        return standard_attention(
            query, self.key, self.value, in_proj_weight, in_proj_bias, num_heads, attn_dropout
        )
