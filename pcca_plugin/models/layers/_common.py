"""Steps every execution form of the person-context attention shares (private).

Shape shorthand: ``N`` persons, ``D = embed_dims``, ``H`` heads of
``E = D / H`` channels, ``L`` context tokens per person.

The forms (:mod:`._standard`, :mod:`._factored`, :mod:`._folded`,
:mod:`._per_clip`) differ only in how they compute the scores of the query
against the keys and the weighted sum of the values; the query projection,
the softmax with its dropout and the value-side output are written here once.
"""

import math
from typing import Callable, List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

HALF_DTYPES = (torch.float16, torch.bfloat16)


def as_float(x: Tensor) -> Tensor:
    """``x`` promoted to float32 when it is half precision, else unchanged."""
    return x.float() if x.dtype in HALF_DTYPES else x


def float32_einsum(equation: str, *operands: Tensor) -> Tensor:
    """``torch.einsum`` with half-precision operands promoted to float32, autocast off.

    Attention logits are sums of ``E`` (or ``C``) products; in float16 they
    overflow for features of a few hundred (torch's
    ``scaled_dot_product_attention`` kernels accumulate them in float32 too).
    float64 operands stay float64.
    """
    promoted = [as_float(x) for x in operands]
    with torch.autocast(device_type=operands[0].device.type, enabled=False):
        return torch.einsum(equation, *promoted)


def gets_grad(params: List[Tensor]) -> bool:
    """Whether a gradient can reach any of ``params`` (grad mode on, one requires grad)."""
    return torch.is_grad_enabled() and any(p.requires_grad for p in params)


def project_query(
    query: Tensor, in_proj_weight: Tensor, in_proj_bias: Tensor, num_heads: int
) -> Tensor:
    """``q_h = W_Q^h Q + b_Q^h`` for every head: ``(N, D)`` -> ``(N, H, E)``."""
    n, d = query.shape
    w_q, b_q = in_proj_weight[:d], in_proj_bias[:d]
    return F.linear(query, w_q, b_q).reshape(n, num_heads, d // num_heads)  # (N, H, E)


def softmax_weights(
    logits: Tensor, head_dims: int, dropout: Callable[[Tensor], Tensor]
) -> Tuple[Tensor, Tensor]:
    """Attention weights after dropout, and their mass per head.

    Args:
        logits (Tensor): unscaled scores ``q_h . k_i``, ``(N, H, L)``.
        head_dims (int): ``E``; the scores are divided by ``sqrt(E)``.
        dropout (callable): dropout on the attention weights.

    Returns:
        tuple[Tensor, Tensor]: the weights ``a_hi``, ``(N, H, L)``, and
        ``s_h = sum_i a_hi``, ``(N, H, 1)`` (1 without dropout; the forms that
        move a bias out of the weighted sum need it to stay exact).
    """
    weights = dropout((logits / math.sqrt(head_dims)).softmax(dim=-1))  # (N, H, L)
    return weights, weights.sum(dim=-1, keepdim=True)  # (N, H, 1)


def project_pooled_values(
    pooled: Tensor, mass: Tensor, in_proj_weight: Tensor, in_proj_bias: Tensor, num_heads: int
) -> Tensor:
    """``W_V^h z_h + s_h b_V^h`` per head, the heads concatenated.

    Args:
        pooled (Tensor): ``z_h``, the weighted sums of ``D``-wide tokens (the
            context projection applied), ``(N, H, D)``.
        mass (Tensor): ``s_h``, ``(N, H, 1)``.
        in_proj_weight (Tensor): ``[W_Q; W_K; W_V]``, ``(3D, D)``.
        in_proj_bias (Tensor): ``[b_Q; b_K; b_V]``, ``(3D,)``.
        num_heads (int): ``H``.

    Returns:
        Tensor: ``(N, D)``.
    """
    n, _, d = pooled.shape
    head_dims = d // num_heads
    w_v, b_v = in_proj_weight[2 * d :], in_proj_bias[2 * d :]
    out = torch.einsum('nhd,hed->nhe', pooled, w_v.reshape(num_heads, head_dims, d))  # (N, H, E)
    out = out + mass * b_v.reshape(num_heads, head_dims)  # (N, H, E)
    return out.reshape(n, d)  # (N, D)


def key_weight_per_head(in_proj_weight: Tensor, num_heads: int) -> Tensor:
    """``W_K`` split by head: ``(3D, D)`` -> ``(H, E, D)``."""
    d = in_proj_weight.shape[1]
    return in_proj_weight[d : 2 * d].reshape(num_heads, d // num_heads, d)  # (H, E, D)


def positional_keys(key_pos: Tensor, in_proj_weight: Tensor, num_heads: int) -> Tensor:
    """``W_K^h pos_i`` for every token and head: ``(1, L, D)`` -> ``(L, H, E)``."""
    d = in_proj_weight.shape[1]
    keys = F.linear(key_pos[0], in_proj_weight[d : 2 * d])  # (L, D)
    return keys.reshape(keys.shape[0], num_heads, -1)  # (L, H, E)
