"""Shared helpers: safe pickle I/O, MultiSports format facts, checkpoint surgery."""

from .checkpoint import extract_submodule_weights
from .multisports_format import (
    EXCLUDED_CLASS_NAMES,
    FIRST_FRAME,
    GT_KEYS,
    check_gt_keys,
    evaluated_label_indices,
    frame_key,
    parse_frame_key,
)
from .pickle_io import UnsafePickleError, dump_pickle, load_pickle

__all__ = [
    'extract_submodule_weights',
    'EXCLUDED_CLASS_NAMES',
    'FIRST_FRAME',
    'GT_KEYS',
    'check_gt_keys',
    'evaluated_label_indices',
    'frame_key',
    'parse_frame_key',
    'UnsafePickleError',
    'dump_pickle',
    'load_pickle',
]
