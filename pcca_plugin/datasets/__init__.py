"""Datasets, transforms and samplers for MultiSports-format data."""

from .multisports_dataset import DEFAULT_PERSON_DET_SCORE_THR, MultiSportsDataset
from .preparation import (
    build_split_annotation,
    check_or_extract_videos,
    extract_frames,
    prepare_multisports,
    prepare_multisports_test,
    validate_gt,
)
from .samplers import ClassBalancedSampler
from .toy_sports import TOY_CLASSES, ToySportsSizes, make_toy_sports, write_clip_level_annotations
from .transforms import OpenCVDecodeClip

__all__ = [
    'DEFAULT_PERSON_DET_SCORE_THR',
    'MultiSportsDataset',
    'ClassBalancedSampler',
    'OpenCVDecodeClip',
    'build_split_annotation',
    'check_or_extract_videos',
    'extract_frames',
    'prepare_multisports',
    'prepare_multisports_test',
    'validate_gt',
    'TOY_CLASSES',
    'ToySportsSizes',
    'make_toy_sports',
    'write_clip_level_annotations',
]
