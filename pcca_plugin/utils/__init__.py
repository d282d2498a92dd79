"""Shared helpers, numpy only: safe pickle I/O, MultiSports format facts, command-line errors,
the checkout's root.

Checkpoint surgery imports torch: it lives in ``pcca_plugin.models.checkpoint_surgery``.
"""

from .checkout import REPO_ROOT, repo_path
from .cli import add_debug_argument, run_cli
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

__all__ = [
    'REPO_ROOT',
    'repo_path',
    'add_debug_argument',
    'run_cli',
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
