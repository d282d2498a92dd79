"""MultiSports evaluation: pure-numpy functional core and the registered metric."""

from .functional import (
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
from .metrics import MultiSportsTubeMetric

__all__ = [
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
