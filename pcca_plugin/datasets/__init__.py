"""Datasets, transforms and samplers for MultiSports-format data."""

from .multisports_dataset import DEFAULT_PERSON_DET_SCORE_THR, MultiSportsDataset
from .preparation import build_split_annotation, extract_frames, prepare_multisports, validate_gt
from .samplers import ClassBalancedSampler
from .transforms import OpenCVDecodeClip

__all__ = [
    'DEFAULT_PERSON_DET_SCORE_THR',
    'MultiSportsDataset',
    'ClassBalancedSampler',
    'OpenCVDecodeClip',
    'build_split_annotation',
    'extract_frames',
    'prepare_multisports',
    'validate_gt',
]
