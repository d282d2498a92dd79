"""Helpers shared by the test suite (as mmaction2 keeps them in ``mmaction.testing``).

This module imports the standard library only; helpers that need torch or the
OpenMMLab stack live in submodules named after what they help test
(``pcca_plugin.testing.models``, ...). Test modules import helpers from here,
never from another test module or another folder's ``conftest.py``.
"""

import os
import subprocess
import sys
from typing import Dict, Sequence

from pcca_plugin.utils.checkout import REPO_ROOT, repo_path

#: Seconds a tool run by :func:`run_tool` may take before the test fails.
TOOL_TIMEOUT_S = 600
#: Overrides where :func:`numpy1_python` looks.
NUMPY1_PYTHON_ENV = 'PCCA_NUMPY1_PYTHON'


def numpy1_python() -> str:
    """The interpreter of the bare numpy 1.x environment ``make setup`` creates (``.venv/numpy1``).

    The 2021 challenge server ran numpy 1.x; the tests read submission files and run the 2021
    scorer's reference there. ``$PCCA_NUMPY1_PYTHON`` names another interpreter.

    Raises:
        FileNotFoundError: there is none; the message says how to make it.
    """
    python = os.environ.get(NUMPY1_PYTHON_ENV) or os.path.join(
        sys.prefix, 'numpy1', 'bin', 'python'
    )
    if not os.path.isfile(python):
        raise FileNotFoundError(
            f'{python}: no numpy 1.x interpreter; `make setup` creates it (or set '
            f'{NUMPY1_PYTHON_ENV} to a python with numpy 1.x and nothing else)'
        )
    return python


def subprocess_env(threads: int = 1, **extra: str) -> Dict[str, str]:
    """The environment for a tool run as a subprocess: ``threads`` CPU threads, plus ``extra``."""
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), **extra)


def run_tool(
    script: str,
    *args: str,
    cwd: str = None,
    env: Dict[str, str] = None,
    timeout: float = TOOL_TIMEOUT_S,
) -> subprocess.CompletedProcess:
    """Run ``tools/<script>`` with this interpreter, as a user would; never raises on failure.

    Args:
        script: the path under ``tools/``, e.g. ``'det/eval_proposals.py'``.
        args: its command-line arguments.
        cwd: the working directory (default: the current one).
        env: the environment (default: :func:`subprocess_env`).
        timeout: seconds before ``subprocess.TimeoutExpired``.

    Returns:
        The finished process with ``stdout`` and ``stderr`` as text; the caller checks
        ``returncode``.
    """
    command: Sequence[str] = [sys.executable, repo_path('tools', script), *map(str, args)]
    return subprocess.run(
        command,
        cwd=cwd,
        env=subprocess_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


__all__ = [
    'NUMPY1_PYTHON_ENV',
    'REPO_ROOT',
    'TOOL_TIMEOUT_S',
    'numpy1_python',
    'repo_path',
    'run_tool',
    'subprocess_env',
]
