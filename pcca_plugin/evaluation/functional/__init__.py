"""Pure-numpy MultiSports evaluation: geometry, AP, frame/video mAP, tube linking, ensembles.

One definition of each metric primitive: :func:`box_iou` (the caller says what an
empty union gives) and :func:`voc_ap` (``precision, recall``) serve the
evaluation, the proposal evaluation and the data preparation alike.

Imports numpy only (no torch, no OpenMMLab package): the command-line tool
``tools/eval_multisports.py`` starts in a fraction of a second.
"""

from .ap import (
    TIE_ORDERS,
    APResult,
    check_tie_order,
    precision_recall,
    rank_descending,
    voc_ap,
)
from .archive import (
    ARCHIVE_MEMBERS,
    ARCHIVE_PICKLE_PROTOCOL,
    ARCHIVE_SUFFIX,
    PYTHON2_NUMPY1_GLOBALS,
    Submission,
    read_submission,
    write_submission_archive,
)
from .ensemble import (
    DEFAULT_BOX_ATOL,
    EnsembleMismatchError,
    ensemble_files,
    ensemble_frame_detections,
)
from .frame_ap import FRAME_IOU_THR, frame_ap
from .geometry import box_area, box_intersection, box_iou, segment_mean, segment_sum, tube_iou
from .ground_truth import (
    FrameDetections,
    GroundTruth,
    VideoDetections,
    check_frame_detection_shape,
    check_frame_detections,
    check_video_detections,
    load_frame_detections,
    load_ground_truth,
)
from .linking import (
    LINK_IOU_THR,
    MIN_TUBE_LENGTH,
    MIN_TUBE_SCORE,
    NMS_IOU_THR,
    NMS_TOP_K,
    link_tubes,
    nms_tubelets,
)
from .server2021 import (
    PAPER_TABLE_FIGURES,
    SERVER2021_FIGURES,
    Server2021VideoScorer,
    act_ap,
    server2021_figures,
    server2021_frame_map,
)
from .submission import (
    VideoList,
    archive_submission,
    read_video_list,
    submission_paths,
    video_list_ground_truth,
    write_submission,
)
from .video_ap import (
    ERROR_COLUMNS,
    MAIN_RANGE,
    VIDEO_IOU_RANGES,
    VIDEO_IOU_THRS,
    VideoAPEvaluator,
    range_thresholds,
    video_ap,
    video_ap_all,
    video_ap_error,
    video_ap_thresholds,
)

__all__ = [
    'TIE_ORDERS',
    'APResult',
    'check_tie_order',
    'precision_recall',
    'rank_descending',
    'voc_ap',
    'ARCHIVE_MEMBERS',
    'ARCHIVE_PICKLE_PROTOCOL',
    'ARCHIVE_SUFFIX',
    'PYTHON2_NUMPY1_GLOBALS',
    'Submission',
    'archive_submission',
    'read_submission',
    'write_submission_archive',
    'DEFAULT_BOX_ATOL',
    'EnsembleMismatchError',
    'ensemble_files',
    'ensemble_frame_detections',
    'FRAME_IOU_THR',
    'frame_ap',
    'box_area',
    'box_intersection',
    'box_iou',
    'segment_mean',
    'segment_sum',
    'tube_iou',
    'FrameDetections',
    'GroundTruth',
    'VideoDetections',
    'check_frame_detection_shape',
    'check_frame_detections',
    'check_video_detections',
    'load_frame_detections',
    'load_ground_truth',
    'LINK_IOU_THR',
    'MIN_TUBE_LENGTH',
    'MIN_TUBE_SCORE',
    'NMS_IOU_THR',
    'NMS_TOP_K',
    'link_tubes',
    'nms_tubelets',
    'PAPER_TABLE_FIGURES',
    'SERVER2021_FIGURES',
    'Server2021VideoScorer',
    'act_ap',
    'server2021_figures',
    'server2021_frame_map',
    'VideoList',
    'read_video_list',
    'submission_paths',
    'video_list_ground_truth',
    'write_submission',
    'ERROR_COLUMNS',
    'MAIN_RANGE',
    'VIDEO_IOU_RANGES',
    'VIDEO_IOU_THRS',
    'VideoAPEvaluator',
    'range_thresholds',
    'video_ap',
    'video_ap_all',
    'video_ap_error',
    'video_ap_thresholds',
]
