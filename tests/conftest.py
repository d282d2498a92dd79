"""Shared pytest setup: import pcca_plugin first so its compatibility fixes apply."""

import os
import sys

import pytest

# Tests run on small CPU machines; keep thread pools from oversubscribing them.
os.environ.setdefault('OMP_NUM_THREADS', '2')
os.environ.setdefault('MKL_NUM_THREADS', '2')

import pcca_plugin  # noqa: E402,F401  (registers everything, applies compat fixes)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Scripts under tools/ are importable by the tests (e.g. `from make_toy_sports import ...`).
for tools_dir in ('tools', os.path.join('tools', 'data')):
    if os.path.join(REPO_ROOT, tools_dir) not in sys.path:
        sys.path.insert(0, os.path.join(REPO_ROOT, tools_dir))


@pytest.fixture(scope='session')
def repo_root() -> str:
    """Absolute path of the repository checkout."""
    return REPO_ROOT
