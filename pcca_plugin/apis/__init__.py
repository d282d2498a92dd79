"""High-level runs, as mmaction2's ``mmaction/apis``: training and testing a config with the Runner.

``tools/train.py`` and ``tools/test.py`` parse their arguments and call
:func:`run_train` / :func:`run_test`; scripts and tests call them the same way
after ``pcca_plugin.register_all_modules()``.
"""

from .runner import (
    RESUME_LATEST,
    add_runner_arguments,
    build_runner,
    load_run_config,
    run_test,
    run_train,
    set_detection_dumps,
    set_format_only,
    tube_metric_configs,
    use_test_split,
)

__all__ = [
    'RESUME_LATEST',
    'add_runner_arguments',
    'build_runner',
    'load_run_config',
    'run_test',
    'run_train',
    'set_detection_dumps',
    'set_format_only',
    'tube_metric_configs',
    'use_test_split',
]
