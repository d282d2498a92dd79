"""PCCA classification head: cross-attention transformer + linear classifier.

Shape shorthand: ``N`` persons, ``C`` backbone channels, ``L = h * w`` context
tokens, ``D`` transformer width, ``K`` classes.

Subclass of mmaction2's ``BBoxHeadAVA`` so that targets, losses (per-class
binary cross-entropy when ``multilabel=True``, softmax cross-entropy
otherwise, optional focal terms), accuracy logging and ``predict_by_feat``
stay the stock ones; only the feature-to-logit mapping is new (section 2.2 of
Ning et al. 2021: "a linear classifier takes the person's representation as
input").
"""

from typing import Optional, Tuple, Union

import torch.nn as nn
from mmaction.models.roi_heads.bbox_heads import BBoxHeadAVA
from mmdet.registry import MODELS
from torch import Tensor

from ..layers.cost_model import DEFAULT_ATTN_IMPL, EMBED_DIMS, NUM_HEADS, NUM_LAYERS
from ..layers.cross_attention import DROPOUT, PersonContextTransformer
from ..layers.roi_align import SampledContext
from ..roi_extractors.context_roi_extractor import CONTEXT_ROI_SIZE
from .negative_roi_loss import NegativeRoILossMixin

#: Dropout before the classifier, as mmaction2's AVA/MultiSports configs use.
CLASSIFIER_DROPOUT = 0.5


@MODELS.register_module()
class PCCABBoxHead(NegativeRoILossMixin, BBoxHeadAVA):
    """Person-context cross-attention head (eq. (1)-(3)) and a linear classifier.

    Args:
        in_channels (int): ``C`` of the person features and context tokens.
        num_classes (int): ``K``; with ``background_class=True`` class 0 is the
            background and is ignored by the loss (AVA convention).
        background_class (bool): see ``BBoxHeadAVA``; False for MultiSports.
        multilabel (bool): True: per-class BCE and sigmoid scores (the paper);
            False: softmax cross-entropy and softmax scores (mmaction2's stock
            MultiSports setting, for comparison).
        embed_dims (int): transformer width ``D`` (1024).
        num_layers (int): cross-attention layers (3).
        num_heads (int): heads per layer (8).
        feedforward_channels (int, optional): FFN width; ``4 * D`` by default.
        transformer_dropout (float): dropout inside the transformer.
        context_size (int | tuple[int, int]): ``(h, w)`` of the context grid;
            used by the positional encoding.
        with_pos_encoding (bool): learned 2-D positional encoding of the
            context keys (off by default, as in the paper).
        dropout_ratio (float): dropout on the person representation before the
            classifier.
        topk (int | tuple[int]): K of the logged top-K recall/precision.
        focal_gamma (float): focal-loss gamma (0: plain BCE / CE).
        focal_alpha (float): focal-loss alpha (1: plain BCE / CE).
        neg_loss_weight (float): weight of the loss on negative RoIs (persons
            without an action, false detections; see
            :mod:`~pcca_plugin.models.bbox_heads.negative_roi_loss`); 0 keeps
            mmaction2's loss, which ignores them.
        attn_impl (str): ``'factored'`` (default: the same attention without
            computing keys and values, about 4.5x fewer multiply-adds) or
            ``'standard'`` (the reference); both use the same parameters, so a
            checkpoint of either loads into the other (see
            :class:`~pcca_plugin.models.layers.PersonContextTransformer`).
        context_projection (str): ``'auto'`` (default), ``'per_person'`` or
            ``'per_clip'``: where the factored attention applies the context
            projection when the extractor hands over the context as a
            ``SampledContext`` (same outputs; see ``PersonContextTransformer``).
    """

    def __init__(
        self,
        in_channels: int = 2304,
        num_classes: int = 66,
        background_class: bool = False,
        multilabel: bool = True,
        embed_dims: int = EMBED_DIMS,
        num_layers: int = NUM_LAYERS,
        num_heads: int = NUM_HEADS,
        feedforward_channels: Optional[int] = None,
        transformer_dropout: float = DROPOUT,
        context_size: Union[int, Tuple[int, int]] = CONTEXT_ROI_SIZE,
        with_pos_encoding: bool = False,
        dropout_ratio: float = CLASSIFIER_DROPOUT,
        topk: Union[int, Tuple[int]] = (3, 5),
        focal_gamma: float = 0.0,
        focal_alpha: float = 1.0,
        neg_loss_weight: float = 0.0,
        attn_impl: str = DEFAULT_ATTN_IMPL,
        context_projection: str = 'auto',
    ) -> None:
        super().__init__(
            background_class=background_class,
            in_channels=in_channels,
            num_classes=num_classes,
            dropout_ratio=dropout_ratio,
            dropout_before_pool=False,
            topk=topk,
            multilabel=multilabel,
            focal_gamma=focal_gamma,
            focal_alpha=focal_alpha,
        )
        self._init_negative_loss(neg_loss_weight)
        # The stock head pools 5-D RoI features; ours receives pooled features.
        del self.temporal_pool, self.spatial_pool
        if isinstance(context_size, int):
            context_size = (context_size, context_size)
        self.context_size = tuple(context_size)
        self.transformer = PersonContextTransformer(
            in_channels=in_channels,
            embed_dims=embed_dims,
            num_layers=num_layers,
            num_heads=num_heads,
            feedforward_channels=feedforward_channels,
            dropout=transformer_dropout,
            context_size=self.context_size,
            with_pos_encoding=with_pos_encoding,
            attn_impl=attn_impl,
            context_projection=context_projection,
        )
        self.fc_cls = nn.Linear(embed_dims, num_classes)

    def init_weights(self) -> None:
        """Transformer: Xavier-uniform; classifier: Xavier-normal, zero bias (stock)."""
        self.transformer.init_weights()
        nn.init.xavier_normal_(self.fc_cls.weight)
        nn.init.zeros_(self.fc_cls.bias)

    def forward(self, person_feats: Tensor, context_feats: Union[Tensor, SampledContext]) -> Tensor:
        """Class logits of every person.

        Args:
            person_feats (Tensor): ``A``, ``(N, C)``.
            context_feats (Tensor | SampledContext): context tokens, ``(N, L, C)``,
                or their sparse-product factors (``ContextRoIExtractor(..., lazy_context=True)``).

        Returns:
            Tensor: logits, ``(N, K)``.
        """
        x = self.transformer(person_feats, context_feats)  # (N, D)
        if self.dropout_ratio > 0:
            x = self.dropout(x)
        return self.fc_cls(x)  # (N, K)


__all__ = ['PCCABBoxHead']
