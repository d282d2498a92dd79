"""Classification heads: cross-attention transformer + linear classifier, linear baseline."""

from .linear_bbox_head import LinearBBoxHead
from .negative_roi_loss import NegativeRoILossMixin
from .pcca_bbox_head import PCCABBoxHead

__all__ = ['LinearBBoxHead', 'NegativeRoILossMixin', 'PCCABBoxHead']
