"""Classification heads: cross-attention transformer + linear classifier."""

from .pcca_bbox_head import PCCABBoxHead

__all__ = ['PCCABBoxHead']
