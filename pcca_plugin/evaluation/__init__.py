"""MultiSports evaluation: pure-numpy functional core and the registered metric.

``functional`` imports numpy only. The metric needs mmengine and mmaction2,
so :class:`MultiSportsTubeMetric` is imported on first access (or when
:func:`pcca_plugin.register_all_modules` registers it).
"""

from pcca_plugin.utils.lazy_import import lazy_attributes

from .functional import (
    TIE_ORDERS,
    APResult,
    GroundTruth,
    VideoAPEvaluator,
    box_iou,
    frame_ap,
    link_tubes,
    load_ground_truth,
    nms_tubelets,
    tube_iou,
    video_ap,
    video_ap_all,
    video_ap_error,
    video_ap_thresholds,
    voc_ap,
)

#: Names loaded on first access: they import mmengine / mmaction2.
_LAZY = {'MultiSportsTubeMetric': '.metrics', 'metrics': '.metrics'}


__getattr__ = lazy_attributes(__name__, _LAZY)

__all__ = [
    'TIE_ORDERS',
    'APResult',
    'GroundTruth',
    'VideoAPEvaluator',
    'box_iou',
    'frame_ap',
    'link_tubes',
    'load_ground_truth',
    'nms_tubelets',
    'tube_iou',
    'video_ap',
    'video_ap_all',
    'video_ap_error',
    'video_ap_thresholds',
    'voc_ap',
    'MultiSportsTubeMetric',
]
