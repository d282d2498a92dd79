"""RoI extractors: person features plus extended-box context tokens."""

from .context_roi_extractor import ContextRoIExtractor, clip_boxes, scale_boxes, temporal_pool

__all__ = ['ContextRoIExtractor', 'clip_boxes', 'scale_boxes', 'temporal_pool']
