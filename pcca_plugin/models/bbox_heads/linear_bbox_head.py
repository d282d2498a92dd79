"""The paper's *Linear* baseline head (Table 1), with the optional negative-RoI loss.

mmaction2's ``BBoxHeadAVA`` (temporal average pool, spatial max pool, dropout,
one linear classifier: the SlowFast detection head of Feichtenhofer et al.,
2019) unchanged, plus ``neg_loss_weight`` from
:mod:`~pcca_plugin.models.bbox_heads.negative_roi_loss`, so that a comparison
of heads can train both on the same RoIs. With ``neg_loss_weight=0`` it is
exactly ``BBoxHeadAVA``.
"""

from mmaction.models.roi_heads.bbox_heads import BBoxHeadAVA
from mmdet.registry import MODELS

from .negative_roi_loss import NegativeRoILossMixin


@MODELS.register_module()
class LinearBBoxHead(NegativeRoILossMixin, BBoxHeadAVA):
    """``BBoxHeadAVA`` with ``neg_loss_weight``.

    Args:
        neg_loss_weight (float): weight of the loss on negative RoIs (0: the
            stock loss, which ignores them).
        **kwargs: every argument of ``BBoxHeadAVA`` (``in_channels``,
            ``num_classes``, ``multilabel``, ``dropout_ratio``, ...).
    """

    def __init__(self, neg_loss_weight: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self._init_negative_loss(neg_loss_weight)


__all__ = ['LinearBBoxHead']
