"""Person-context cross-attention transformer (Ning et al. 2021, section 2.2).

Shape shorthand: ``N`` persons, ``C`` backbone channels, ``D = embed_dims``,
``L = h * w`` context tokens per person.

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
"""

from typing import Optional, Tuple

import torch.nn as nn
from torch import Tensor

#: Section 2.2: 3 layers, 8 heads, projection dimension 1024.
NUM_LAYERS = 3
NUM_HEADS = 8
EMBED_DIMS = 1024
#: FFN width: 4 x embed_dims, as in Vaswani et al. (2017); the paper omits it.
FFN_RATIO = 4
DROPOUT = 0.1


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
        self.attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=dropout, batch_first=True)
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

    def forward(self, query: Tensor, key: Tensor, value: Tensor) -> Tensor:
        """Post-norm update of the person query.

        Args:
            query (Tensor): ``Q^{j-1}``, ``(N, 1, D)``.
            key (Tensor): context tokens (plus positional encoding), ``(N, L, D)``.
            value (Tensor): context tokens, ``(N, L, D)``.

        Returns:
            Tensor: ``Q^j``, ``(N, 1, D)``.
        """
        attended, _ = self.attn(query, key, value, need_weights=False)  # (N, 1, D)
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
    ) -> None:
        super().__init__()
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

    def forward(self, person: Tensor, context: Tensor) -> Tensor:
        """Relate every person to its own context.

        Args:
            person (Tensor): ``A``, ``(N, C)``.
            context (Tensor): context tokens, ``(N, L, C)``.

        Returns:
            Tensor: ``Q^{num_layers}``, the person representation, ``(N, D)``.
        """
        if person.shape[-1] != self.in_channels or context.shape[-1] != self.in_channels:
            raise ValueError(
                f'PersonContextTransformer: got person features with {person.shape[-1]} '
                f'and context tokens with {context.shape[-1]} channels, but '
                f'in_channels={self.in_channels}; set the head in_channels to the '
                'backbone channel count.'
            )
        query = self.person_proj(person).unsqueeze(1)  # (N, 1, D)
        value = self.context_proj(context)  # (N, L, D)
        key = value
        if self.pos_encoding is not None:
            if self.pos_encoding.grid_size[0] * self.pos_encoding.grid_size[1] != value.shape[1]:
                raise ValueError(
                    f'positional encoding is for a {self.pos_encoding.grid_size} grid but '
                    f'got {value.shape[1]} context tokens.'
                )
            key = value + self.pos_encoding()  # (N, L, D)
        if query.shape[0] == 0:  # nothing to attend; keep the graph and the shape
            return query.squeeze(1) + 0 * value.sum()
        for layer in self.layers:
            query = layer(query, key, value)  # (N, 1, D)
        return query.squeeze(1)  # (N, D)

    def extra_repr(self) -> str:
        return (
            f'in_channels={self.in_channels}, embed_dims={self.embed_dims}, '
            f'num_layers={self.num_layers}, num_heads={self.num_heads}, '
            f'feedforward_channels={self.feedforward_channels}, '
            f'with_pos_encoding={self.pos_encoding is not None}'
        )


def count_macs_per_person(
    in_channels: int,
    num_tokens: int,
    embed_dims: int = EMBED_DIMS,
    num_layers: int = NUM_LAYERS,
    feedforward_channels: Optional[int] = None,
) -> int:
    """Multiply-adds of :class:`PersonContextTransformer` for one person (forward).

    Counts the matrix products (projections, attention, FFN); softmax,
    LayerNorm and biases are lower-order and left out.

    Args:
        in_channels (int): ``C``.
        num_tokens (int): ``L = h * w``.
        embed_dims (int): ``D``.
        num_layers (int): layers.
        feedforward_channels (int, optional): FFN width, ``4 * D`` by default.

    Returns:
        int: multiply-adds.
    """
    if feedforward_channels is None:
        feedforward_channels = FFN_RATIO * embed_dims
    d = embed_dims
    macs = in_channels * d * (1 + num_tokens)  # person and context projections
    per_layer = (
        d * d  # query projection
        + 2 * num_tokens * d * d  # key and value projections of the context
        + 2 * num_tokens * d  # q.k and attention-weighted sum of values
        + d * d  # output projection
        + 2 * d * feedforward_channels
    )  # FFN
    return macs + num_layers * per_layer


__all__ = [
    'CrossAttentionLayer',
    'LearnedPositionalEncoding2D',
    'PersonContextTransformer',
    'count_macs_per_person',
]
