"""Shared helpers: safe pickle I/O, MultiSports format facts, checkpoint surgery."""

from .lazy_import import lazy_attributes
from .multisports_format import (
    EVALUATION_GT_KEYS,
    EXCLUDED_CLASS_NAMES,
    FIRST_FRAME,
    GT_KEYS,
    TRAINING_PREPARATION_GT_KEYS,
    check_gt_keys,
    evaluated_label_indices,
    frame_key,
    parse_frame_key,
)
from .pickle_io import PICKLE_STYLES, UnsafePickleError, dump_pickle, dumps_pickle, load_pickle

#: Loaded on first access: checkpoint surgery imports torch, the rest is pure numpy.
_LAZY = {'extract_submodule_weights': '.checkpoint', 'checkpoint': '.checkpoint'}


__getattr__ = lazy_attributes(__name__, _LAZY)

__all__ = [
    'extract_submodule_weights',
    'EVALUATION_GT_KEYS',
    'EXCLUDED_CLASS_NAMES',
    'FIRST_FRAME',
    'GT_KEYS',
    'TRAINING_PREPARATION_GT_KEYS',
    'check_gt_keys',
    'evaluated_label_indices',
    'frame_key',
    'parse_frame_key',
    'PICKLE_STYLES',
    'UnsafePickleError',
    'dump_pickle',
    'dumps_pickle',
    'load_pickle',
]
