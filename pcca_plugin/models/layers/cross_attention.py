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

Execution forms. ``MultiHead(Q^{j-1}, C, C)`` can be computed in four exact
ways from the same parameters (:class:`AttentionProjections`), so checkpoints
load into any of them; each lives in its own private module, and
:mod:`.cost_model` counts their multiply-adds and chooses one per forward:

- standard (:mod:`._standard`): keys and values computed, the reference;
- factored (:mod:`._factored`): with a single query per person the context
  projection is folded into the query and applied after the weighted sum, so
  keys and values never exist (``attn_impl='factored'``, the default);
- folded (:mod:`._folded`): the factored form with the context projection
  folded into the weights once (cached when no gradient reaches them);
- per clip (:mod:`._per_clip`): the context projection applied once to the
  feature map of a :class:`~.roi_align.SampledContext`.

Each form prepares a *context* per layer (the tensors it attends with) and
has one attention function (:data:`ATTENTION_OF_FORM`) that returns the
heads' outputs ``(N, D)`` from it; :meth:`CrossAttentionLayer.attention`
applies the output projection, :meth:`CrossAttentionLayer.forward` the
residuals, LayerNorms and FFN of eq. (2)-(3), the same for every form.

Under autocast (mixed precision) the attention logits and the softmax are
computed in float32 from the half-precision operands, as torch's
``scaled_dot_product_attention`` kernels accumulate them, so that large
features cannot overflow the scores.
"""

from typing import List, Optional, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from ._common import AttentionWeights, ValidatedChoice, gets_grad
from ._factored import FactoredContext, factored_attention
from ._folded import (
    FoldCache,
    FoldedContext,
    FoldedLayerWeights,
    fold_layer_weights,
    folded_attention,
)
from ._per_clip import PerClipContext, per_clip_attention
from ._standard import StandardContext, standard_attention
from .cost_model import (
    ATTN_IMPLS,
    CONTEXT_PROJECTIONS,
    DEFAULT_ATTN_IMPL,
    EMBED_DIMS,
    FFN_RATIO,
    NUM_HEADS,
    NUM_LAYERS,
    AttentionCost,
)
from .roi_align import SampledContext

#: Dropout of the transformer (Vaswani et al. 2017, section 5.4).
DROPOUT = 0.1

#: What a layer attends to: projected tokens ``(N, L, D)``, or a form's prepared context.
LayerContext = Union[Tensor, StandardContext, FactoredContext, FoldedContext, PerClipContext]
#: The attention of each execution form, by the context the form prepared; each returns
#: the heads' outputs ``(N, D)`` from ``(query, context, AttentionWeights)``.
ATTENTION_OF_FORM = {
    StandardContext: standard_attention,
    FactoredContext: factored_attention,
    FoldedContext: folded_attention,
    PerClipContext: per_clip_attention,
}


class AttentionProjections(nn.Module):
    """The parameters of one multi-head attention (Vaswani et al. 2017, section 3.2.2).

    ``[W_Q; W_K; W_V]`` and their biases, and the output projection, with the
    names, shapes, initialisation and random-number use of
    ``nn.MultiheadAttention``, so that its checkpoints load. Holds no
    computation: the execution forms compute the attention from these.

    Args:
        embed_dims (int): ``D``.
        num_heads (int): ``H``.
    """

    def __init__(self, embed_dims: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dims, embed_dims))  # (3D, D)
        self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dims))  # (3D,)
        self.out_proj = nn.Linear(embed_dims, embed_dims)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform ``[W_Q; W_K; W_V]``, zero biases (as ``nn.MultiheadAttention``)."""
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.constant_(self.in_proj_bias, 0.0)
        nn.init.constant_(self.out_proj.bias, 0.0)

    def extra_repr(self) -> str:
        return f'embed_dims={self.in_proj_weight.shape[1]}, num_heads={self.num_heads}'


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

    @property
    def num_tokens(self) -> int:
        """``h * w``."""
        return self.grid_size[0] * self.grid_size[1]

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
        dropout (float): the rate of :attr:`dropout` (on the attention weights
            and on both residual branches) and of the FFN's inner dropout.
    """

    def __init__(
        self, embed_dims: int, num_heads: int, feedforward_channels: int, dropout: float
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.attn = AttentionProjections(embed_dims, num_heads)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.ffn = nn.Sequential(
            nn.Linear(embed_dims, feedforward_channels),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(feedforward_channels, embed_dims),
        )
        self.norm2 = nn.LayerNorm(embed_dims)
        self.dropout = nn.Dropout(dropout)

    def attention(
        self, query: Tensor, context: LayerContext, key_pos: Optional[Tensor] = None
    ) -> Tensor:
        """``MultiHead(Q^{j-1}, C, C)``.

        Args:
            query (Tensor): ``Q^{j-1}``, ``(N, D)``.
            context (Tensor | context): the projected context tokens ``(N, L, D)``
                (keys are ``context + key_pos``, values ``context``), or the
                context an execution form prepared for this layer.
            key_pos (Tensor, optional): positional encoding of the keys,
                ``(1, L, D)``, for a tensor ``context`` (a prepared context
                holds its own).

        Returns:
            Tensor: ``(N, D)``.
        """
        if isinstance(context, Tensor):
            key = context if key_pos is None else context + key_pos  # (N, L, D)
            context = StandardContext(key, context)
        attn = self.attn
        weights = AttentionWeights(
            attn.in_proj_weight, attn.in_proj_bias, self.num_heads, self.dropout
        )
        heads = ATTENTION_OF_FORM[type(context)](query, context, weights)  # (N, D)
        return attn.out_proj(heads)  # (N, D)

    def forward(
        self, query: Tensor, context: LayerContext, key_pos: Optional[Tensor] = None
    ) -> Tensor:
        """Post-norm update of the person query.

        Args:
            query (Tensor): ``Q^{j-1}``, ``(N, D)``.
            context (Tensor | context): see :meth:`attention`.
            key_pos (Tensor, optional): see :meth:`attention`.

        Returns:
            Tensor: ``Q^j``, ``(N, D)``.
        """
        x = self.norm1(query + self.dropout(self.attention(query, context, key_pos)))  # eq. (2)
        return self.norm2(x + self.dropout(self.ffn(x)))  # eq. (3)


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
            gradients the factored form uses its folded weights, cached.
        context_projection (str): for context given as a
            :class:`~.roi_align.SampledContext` (``ContextRoIExtractor(...,
            lazy_context=True)``), where the factored form applies the context
            projection: ``'per_person'``, ``'per_clip'`` (once on the feature
            map) or ``'auto'`` (default: the one with fewer multiply-adds for
            the batch). Same outputs either way; context given as a tensor of
            tokens is always projected per person. Settable after construction.
    """

    #: ``'factored'`` or ``'standard'``, checked when set; a change drops the cached fold.
    attn_impl = ValidatedChoice(
        'attn_impl',
        ATTN_IMPLS,
        'same parameters and outputs; factored is faster',
        'clear_fold_cache',
    )
    #: ``'auto'``, ``'per_person'`` or ``'per_clip'``, checked when set.
    context_projection = ValidatedChoice(
        'context_projection', CONTEXT_PROJECTIONS, 'same outputs; auto picks the cheaper'
    )

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
        # the folded weights: a plain attribute, never in the state_dict
        self._fold_cache = FoldCache()
        self.attn_impl = attn_impl
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
        self.cost = AttentionCost(
            in_channels,
            embed_dims,
            num_layers,
            num_heads,
            feedforward_channels,
            None if self.pos_encoding is None else self.pos_encoding.num_tokens,
        )
        self.init_weights()

    def init_weights(self) -> None:
        """Xavier-uniform linear weights, zero biases (Vaswani et al.; DETR)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, (AttentionProjections, nn.LayerNorm)):
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
            if self.pos_encoding.num_tokens != num_tokens:
                raise ValueError(
                    f'positional encoding is for a {self.pos_encoding.grid_size} grid but '
                    f'got {num_tokens} context tokens.'
                )
            key_pos = self.pos_encoding()  # (1, L, D)
        query = self.person_proj(person)  # Q^0 = A, (N, D)
        form = self.execution_form(context)
        if form == 'per_clip':
            return self._forward_per_clip(query, sampled, key_pos)
        tokens = sampled.tokens() if sampled is not None else context  # (N, L, C)
        for layer, layer_context in zip(self.layers, self._layer_contexts(form, tokens, key_pos)):
            query = layer(query, layer_context)  # (N, D)
        return query

    def execution_form(self, context: Union[Tensor, SampledContext]) -> str:
        """The form a forward with ``context`` runs now (it depends on grad mode).

        One of ``'standard'``, ``'factored'``, ``'folded'`` and ``'per_clip'``
        (:meth:`.cost_model.AttentionCost.choose`): ``attn_impl='standard'``
        runs the standard form; otherwise the per-clip form for a
        :class:`SampledContext` when ``context_projection`` asks for it or,
        with ``'auto'``, when it costs fewer multiply-adds; else the folded
        form without gradients for the folded parameters (cached) or with
        more persons than the fold's break-even, and the factored form below it.
        """
        if isinstance(context, SampledContext):
            num_persons, num_tokens = context.num_rois, context.num_tokens
            num_positions = context.table.shape[0]
        else:
            (num_persons, num_tokens), num_positions = context.shape[:2], None
        with_grad = gets_grad(self._folded_parameters())
        batch = (num_persons, num_tokens, num_positions, with_grad)
        return self.cost.choose(self.attn_impl, self.context_projection, *batch)

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
            int: multiply-adds of the matrix products (the sparse RoIAlign
            product and the one-off cached fold are not counted).
        """
        batch = (num_persons, num_tokens, num_positions, with_grad)
        return self.cost.count_macs(self.attn_impl, self.context_projection, *batch)

    def _layer_contexts(
        self, form: str, tokens: Tensor, key_pos: Optional[Tensor]
    ) -> List[LayerContext]:
        """What every layer attends to in a per-person form, from the raw tokens ``(N, L, C)``."""
        if form == 'standard':
            value = self.context_proj(tokens)  # (N, L, D)
            key = value if key_pos is None else value + key_pos  # (N, L, D)
            return [StandardContext(key, value)] * self.num_layers
        if form == 'factored':
            proj = self.context_proj
            return [FactoredContext(tokens, proj.weight, proj.bias, key_pos)] * self.num_layers
        return [FoldedContext(tokens, folded) for folded in self._folded_weights()]

    def _forward_per_clip(
        self, query: Tensor, sampled: SampledContext, key_pos: Optional[Tensor]
    ) -> Tensor:
        """The layers with the context projection applied once to the feature map.

        Args:
            query (Tensor): ``Q^0``, ``(N, D)``.
            sampled (SampledContext): the context's sparse-product factors.
            key_pos (Tensor, optional): positional encoding of the keys, ``(1, L, D)``.

        Returns:
            Tensor: ``Q^{num_layers}``, ``(N, D)``.
        """
        proj = self.context_proj
        context = PerClipContext.project(sampled, proj.weight, proj.bias, key_pos)
        try:
            for layer in self.layers:
                query = layer(query, context)  # (N, D)
        finally:
            context.projected.release()  # the tokens are formed again in a backward pass
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

    def _folded_weights(self) -> List[FoldedLayerWeights]:
        """The folded weights for this forward.

        With gradients for the folded parameters, a fresh, differentiable fold;
        without, the cached fold (rebuilt when any of them changed).
        """
        params = self._folded_parameters()
        if gets_grad(params):
            return self._compute_folded_weights()
        return self._fold_cache.get(params, self._compute_folded_weights)

    @property
    def cached_fold(self) -> Optional[List[FoldedLayerWeights]]:
        """The cached folded weights of every layer, or None (not built yet, or dropped)."""
        return self._fold_cache.folded

    def clear_fold_cache(self) -> None:
        """Drop the cached folded weights (they are rebuilt on the next forward that uses them)."""
        self._fold_cache.clear()

    def _apply(self, fn, *args, **kwargs):
        self._fold_cache.clear()  # .to(), .double(), .cuda(): the fold is rebuilt
        return super()._apply(fn, *args, **kwargs)

    def extra_repr(self) -> str:
        return (
            f'in_channels={self.in_channels}, embed_dims={self.embed_dims}, '
            f'num_layers={self.num_layers}, num_heads={self.num_heads}, '
            f'feedforward_channels={self.feedforward_channels}, '
            f'with_pos_encoding={self.pos_encoding is not None}, attn_impl={self.attn_impl!r}, '
            f'context_projection={self.context_projection!r}'
        )


__all__ = [
    'ATTN_IMPLS',
    'CONTEXT_PROJECTIONS',
    'DROPOUT',
    'AttentionProjections',
    'CrossAttentionLayer',
    'LearnedPositionalEncoding2D',
    'PersonContextTransformer',
]
