"""What the layers share (private): the steps of every attention form, checked choices.

Shape shorthand: ``N`` persons, ``D = embed_dims``, ``H`` heads of
``E = D / H`` channels, ``L`` context tokens per person.

The execution forms (:mod:`._standard`, :mod:`._factored`, :mod:`._folded`,
:mod:`._per_clip`) differ only in how they compute the scores of the query
against the keys and the weighted sum of the values; the query projection,
the softmax with its dropout and the value-side output are written here once.
:class:`ValidatedChoice` checks ``attn_impl``, ``context_projection`` and
``roi_align_impl`` once, when they are set.
"""

import math
from typing import Callable, List, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

HALF_DTYPES = (torch.float16, torch.bfloat16)


def check_choice(name: str, value: str, choices: tuple, hint: str) -> str:
    """Return ``value`` or raise a ``ValueError`` that names the field and lists the choices."""
    if value not in choices:
        raise ValueError(f'{name}={value!r} is not one of {choices} ({hint}).')
    return value


class ValidatedChoice:
    """A string attribute checked against its choices when it is set (not when it is read).

    Args:
        name (str): the field's name in error messages (the config key).
        choices (tuple[str]): the allowed values.
        hint (str): what the choice changes, for the error message.
        on_change (str, optional): a method of the owner called after every set.
    """

    def __init__(self, name: str, choices: tuple, hint: str, on_change: Optional[str] = None):
        self.name, self.choices, self.hint, self.on_change = name, choices, hint, on_change

    def __set_name__(self, owner, attribute: str) -> None:
        self.attribute = f'_{attribute}'

    def __get__(self, obj, objtype=None):
        return self if obj is None else getattr(obj, self.attribute)

    def __set__(self, obj, value: str) -> None:
        object.__setattr__(
            obj, self.attribute, check_choice(self.name, value, self.choices, self.hint)
        )
        if self.on_change is not None:
            getattr(obj, self.on_change)()


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


class AttentionWeights(NamedTuple):
    """One layer's attention parameters and dropout, as every execution form reads them.

    Each form's attention function takes ``(query, context, weights)``: the
    queries ``Q^{j-1}`` ``(N, D)``, the context the form prepared, and these;
    it returns the heads' outputs concatenated, before the output projection,
    ``(N, D)``.

    Attributes:
        in_proj_weight (Tensor): ``[W_Q; W_K; W_V]``, ``(3D, D)``.
        in_proj_bias (Tensor): ``[b_Q; b_K; b_V]``, ``(3D,)``.
        num_heads (int): ``H``.
        attn_dropout (callable): dropout on the attention weights.
    """

    in_proj_weight: Tensor
    in_proj_bias: Tensor
    num_heads: int
    attn_dropout: Callable[[Tensor], Tensor]


def project_query(query: Tensor, weights: AttentionWeights) -> Tensor:
    """``q_h = W_Q^h Q + b_Q^h`` for every head: ``(N, D)`` -> ``(N, H, E)``."""
    n, d = query.shape
    w_q, b_q = weights.in_proj_weight[:d], weights.in_proj_bias[:d]
    return F.linear(query, w_q, b_q).reshape(
        n, weights.num_heads, d // weights.num_heads
    )  # (N, H, E)


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


def project_pooled_values(pooled: Tensor, mass: Tensor, weights: AttentionWeights) -> Tensor:
    """``W_V^h z_h + s_h b_V^h`` per head, the heads concatenated.

    Args:
        pooled (Tensor): ``z_h``, the weighted sums of ``D``-wide tokens (the
            context projection applied), ``(N, H, D)``.
        mass (Tensor): ``s_h``, ``(N, H, 1)``.
        weights (AttentionWeights): the layer's ``W_V`` and ``b_V``.

    Returns:
        Tensor: ``(N, D)``.
    """
    n, num_heads, d = pooled.shape
    head_dims = d // num_heads
    w_v, b_v = weights.in_proj_weight[2 * d :], weights.in_proj_bias[2 * d :]
    out = torch.einsum('nhd,hed->nhe', pooled, w_v.reshape(num_heads, head_dims, d))  # (N, H, E)
    out = out + mass * b_v.reshape(num_heads, head_dims)  # (N, H, E)
    return out.reshape(n, d)  # (N, D)


def key_weight_per_head(weights: AttentionWeights) -> Tensor:
    """``W_K`` split by head: ``(3D, D)`` -> ``(H, E, D)``."""
    d = weights.in_proj_weight.shape[1]
    num_heads = weights.num_heads
    return weights.in_proj_weight[d : 2 * d].reshape(num_heads, d // num_heads, d)  # (H, E, D)


def positional_keys(key_pos: Tensor, key_weight: Tensor, num_heads: int) -> Tensor:
    """``W_K^h pos_i`` for every token and head: ``(1, L, D)``, ``(D, D)`` -> ``(L, H, E)``."""
    keys = F.linear(key_pos[0], key_weight)  # (L, D)
    return keys.reshape(keys.shape[0], num_heads, -1)  # (L, H, E)
