"""RoI heads: mmaction2's AVARoIHead wired to the person-context path."""

from .pcca_roi_head import PCCARoIHead

__all__ = ['PCCARoIHead']
