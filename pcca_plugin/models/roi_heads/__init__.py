"""RoI heads: mmaction2's AVARoIHead wired to the person-context path, and their cost."""

from .pcca_roi_head import PCCARoIHead
from .profiling import ForwardCost, inference_macs, training_forward_cost

__all__ = ['ForwardCost', 'PCCARoIHead', 'inference_macs', 'training_forward_cost']
