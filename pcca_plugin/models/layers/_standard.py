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
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import AttentionWeights, float32_einsum


class StandardContext(NamedTuple):
    """The context of every layer in the standard form: projected tokens as keys and values.

    Attributes:
        key (Tensor): ``P c_i + p + pos_i``, ``(N, L, D)``.
        value (Tensor): ``P c_i + p``, ``(N, L, D)``.
    """

    key: Tensor
    value: Tensor


def standard_attention(
    query: Tensor, context: StandardContext, weights: AttentionWeights
) -> Tensor:
    """Multi-head attention of one query per person, keys and values computed.

    Arguments and result as every form's (:class:`~._common.AttentionWeights`);
    ``context`` holds the keys and values before their projections.
    """
    n, d = query.shape
    key, value = context
    in_proj_weight, in_proj_bias, num_heads, attn_dropout = weights
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
