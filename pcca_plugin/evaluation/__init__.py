"""MultiSports evaluation: pure-numpy functional core and the registered metric.

``functional`` imports numpy only. The metric needs mmengine and mmaction2,
so :class:`MultiSportsTubeMetric` is imported on first access (or when
:func:`pcca_plugin.register_all_modules` registers it).
"""

import importlib

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


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name], __name__)
        return module if name == 'metrics' else getattr(module, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


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
