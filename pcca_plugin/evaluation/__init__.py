"""MultiSports evaluation: the pure-numpy functional core (numpy only).

The registered metric needs mmengine and mmaction2, so it lives in
:mod:`pcca_plugin.evaluation.metrics` and is not imported here:
``from pcca_plugin.evaluation.metrics import MultiSportsTubeMetric``.
:mod:`~pcca_plugin.evaluation.tasks` holds the tasks of
``tools/eval_multisports.py``; :mod:`~pcca_plugin.evaluation.benchmark` the
case and measurements of ``tools/benchmark_eval.py``.
"""

from .functional import (
    TIE_ORDERS,
    APResult,
    GroundTruth,
    VideoAPEvaluator,
    box_iou,
    ensemble_files,
    ensemble_frame_detections,
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
from .tasks import TASKS, run_task

__all__ = [
    'TIE_ORDERS',
    'APResult',
    'GroundTruth',
    'VideoAPEvaluator',
    'TASKS',
    'box_iou',
    'ensemble_files',
    'ensemble_frame_detections',
    'frame_ap',
    'link_tubes',
    'load_ground_truth',
    'nms_tubelets',
    'run_task',
    'tube_iou',
    'video_ap',
    'video_ap_all',
    'video_ap_error',
    'video_ap_thresholds',
    'voc_ap',
]
