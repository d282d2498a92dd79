"""Multiply-adds of the person-context transformer's execution forms, and the choice among them.

Shape shorthand: ``N`` persons, ``C`` backbone channels, ``D = embed_dims``,
``H`` heads, ``L`` context tokens per person, ``R = B * H_map * W_map``
feature-map positions of the batch.

:class:`~.cross_attention.PersonContextTransformer` computes the same
outputs in one of four forms (each in its own private module):

- ``'standard'``: keys and values computed (:mod:`._standard`), the reference;
- ``'factored'``: keys and values never formed, the context projection ``P``
  applied per person and head (:mod:`._factored`);
- ``'folded'``: the factored form with ``P`` folded into the weights once
  (:mod:`._folded`): cached without gradients, recomputed in the forward
  with gradients above :func:`fold_break_even_persons`;
- ``'per_clip'``: ``P`` applied once to the feature map (:mod:`._per_clip`),
  for context given as a :class:`~.roi_align.SampledContext`.

:meth:`AttentionCost.choose` picks one from ``attn_impl``,
``context_projection``, the batch and grad mode, by counting the
multiply-adds of the matrix products (softmax, LayerNorm, biases and the
dropout mass are lower-order and left out; ``tests/test_models/test_layers``
checks the counts against ``torch.utils.flop_counter.FlopCounterMode``).
"""

import dataclasses
import math
from typing import Dict, Optional

from ._common import check_choice

#: Section 2.2 of Ning et al. (2021): 3 layers, 8 heads, projection dimension 1024.
NUM_LAYERS = 3
NUM_HEADS = 8
EMBED_DIMS = 1024
#: FFN width: 4 x embed_dims, as in Vaswani et al. (2017); the paper omits it.
FFN_RATIO = 4
#: The attention implementations; both give the same outputs from the same parameters.
ATTN_IMPLS = ('factored', 'standard')
#: The default: the factored form, about 4.5x fewer multiply-adds at the paper's sizes.
DEFAULT_ATTN_IMPL = 'factored'
#: Where the factored form applies the context projection ``P`` to a ``SampledContext``:
#: per person, once per clip on the feature map, or ``'auto'``: whichever costs fewer
#: multiply-adds for the batch at hand.
CONTEXT_PROJECTIONS = ('auto', 'per_person', 'per_clip')
#: The execution forms (see the module docstring).
FORMS = ('standard', 'factored', 'folded', 'per_clip')


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
    """Multiply-adds of the transformer for one person (forward), per-person forms.

    At the paper's sizes (``C = 2304``, ``L = 81``): 0.735 G standard,
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
            folded into the weights (the ``'folded'`` form).

    Returns:
        int: multiply-adds.
    """
    if feedforward_channels is None:
        feedforward_channels = FFN_RATIO * embed_dims
    c, d, length = in_channels, embed_dims, num_tokens
    ffn = 2 * d * feedforward_channels
    check_choice('attn_impl', attn_impl, ATTN_IMPLS, 'same outputs; factored is faster')
    if attn_impl == 'standard':
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
    """Multiply-adds of folding the weights once (every layer).

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
    the terms of :func:`count_macs_per_person` that the per-clip form replaces.
    """
    per_layer = 2 * num_heads * in_channels * embed_dims + 2 * num_heads * num_tokens * in_channels
    return num_persons * num_layers * per_layer


@dataclasses.dataclass(frozen=True)
class AttentionCost:
    """The cost model of one transformer's sizes, and the choice of its execution form.

    Attributes:
        in_channels (int): ``C``.
        embed_dims (int): ``D``.
        num_layers (int): layers.
        num_heads (int): ``H``.
        feedforward_channels (int): FFN width.
        pos_tokens (int, optional): ``L`` of the positional encoding's grid, or
            None without the encoding.
    """

    in_channels: int
    embed_dims: int
    num_layers: int
    num_heads: int
    feedforward_channels: int
    pos_tokens: Optional[int] = None

    @property
    def with_pos_encoding(self) -> bool:
        return self.pos_tokens is not None

    def per_person(self, num_tokens: int, attn_impl: str, folded_weights: bool = False) -> int:
        """:func:`count_macs_per_person` at these sizes."""
        return count_macs_per_person(
            self.in_channels,
            num_tokens,
            embed_dims=self.embed_dims,
            num_layers=self.num_layers,
            feedforward_channels=self.feedforward_channels,
            num_heads=self.num_heads,
            attn_impl=attn_impl,
            with_pos_encoding=self.with_pos_encoding,
            folded_weights=folded_weights,
        )

    def fold_break_even(self) -> float:
        """:func:`fold_break_even_persons` at these sizes (``L`` cancels without the encoding)."""
        return fold_break_even_persons(
            self.in_channels,
            self.embed_dims,
            self.num_heads,
            1 if self.pos_tokens is None else self.pos_tokens,
            with_pos_encoding=self.with_pos_encoding,
        )

    def folds(self, num_persons: int, with_grad: bool) -> bool:
        """Whether the per-person factored form uses folded weights (else the per-person products).

        Without gradients the cached fold (its cost not counted); with
        gradients a fresh fold above :meth:`fold_break_even`.
        """
        return not with_grad or num_persons > self.fold_break_even()

    def form_macs(
        self, num_persons: int, num_tokens: int, num_positions: int, with_grad: bool
    ) -> Dict[str, int]:
        """Forward multiply-adds of the factored transformer for ``N`` persons, by where ``P`` runs.

        Returns:
            dict: ``per_person``: :func:`count_macs_per_person`, with the
            folded weights where the forward would use them (:meth:`folds`;
            a fresh fold counted); ``per_clip``: the per-person products with
            ``P`` replaced by one projection of the ``R = num_positions`` map
            positions (:func:`count_clip_projection_macs`).
        """
        folded = self.folds(num_persons, with_grad)
        per_person = num_persons * self.per_person(num_tokens, 'factored', folded)
        if with_grad and folded:  # a fresh, differentiable fold in this forward
            per_person += count_fold_macs(
                self.in_channels,
                num_tokens,
                self.embed_dims,
                self.num_layers,
                self.with_pos_encoding,
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
            num_persons * self.per_person(num_tokens, 'factored')
            - count_per_person_projection_macs(**shape)
            + count_clip_projection_macs(num_positions=num_positions, **shape)
        )
        return dict(per_person=per_person, per_clip=per_clip)

    def choose(
        self,
        attn_impl: str,
        context_projection: str,
        num_persons: int,
        num_tokens: int,
        num_positions: Optional[int],
        with_grad: bool,
    ) -> str:
        """The execution form for a batch, one of :data:`FORMS`.

        Args:
            attn_impl (str): one of :data:`ATTN_IMPLS`; ``'standard'`` always
                runs the standard form.
            context_projection (str): one of :data:`CONTEXT_PROJECTIONS`.
            num_persons (int): ``N``.
            num_tokens (int): ``L``.
            num_positions (int, optional): ``R`` for context given as a
                ``SampledContext``; None for a tensor of tokens (always
                projected per person).
            with_grad (bool): whether a gradient can reach the folded
                parameters (grad mode on and one of them requires grad).
        """
        if attn_impl == 'standard':
            return 'standard'
        if num_positions is not None and context_projection != 'per_person':
            if context_projection == 'per_clip':
                return 'per_clip'
            macs = self.form_macs(num_persons, num_tokens, num_positions, with_grad)
            if macs['per_clip'] < macs['per_person']:
                return 'per_clip'
        return 'folded' if self.folds(num_persons, with_grad) else 'factored'

    def count_macs(
        self,
        attn_impl: str,
        context_projection: str,
        num_persons: int,
        num_tokens: int,
        num_positions: int,
        with_grad: bool,
    ) -> int:
        """Forward multiply-adds of a batch in the form the transformer would use.

        ``num_positions`` is the map's ``R`` for context given as a
        ``SampledContext``; the sparse RoIAlign product and the one-off
        cached fold are not counted.
        """
        if attn_impl == 'standard':
            return num_persons * self.per_person(num_tokens, 'standard')
        macs = self.form_macs(num_persons, num_tokens, num_positions, with_grad)
        if context_projection == 'auto':
            return min(macs.values())
        return macs[context_projection]


__all__ = [
    'ATTN_IMPLS',
    'CONTEXT_PROJECTIONS',
    'DEFAULT_ATTN_IMPL',
    'EMBED_DIMS',
    'FFN_RATIO',
    'FORMS',
    'NUM_HEADS',
    'NUM_LAYERS',
    'AttentionCost',
    'count_clip_projection_macs',
    'count_fold_macs',
    'count_macs_per_person',
    'count_per_person_projection_macs',
    'fold_break_even_persons',
]
