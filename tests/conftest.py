"""Shared pytest setup: import pcca_plugin first so its compatibility fixes apply."""

import os

import pytest

# Tests run on small CPU machines; keep thread pools from oversubscribing them.
os.environ.setdefault('OMP_NUM_THREADS', '2')
os.environ.setdefault('MKL_NUM_THREADS', '2')

import pcca_plugin  # noqa: E402,F401  (registers everything, applies compat fixes)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='session')
def repo_root() -> str:
    """Absolute path of the repository checkout."""
    return REPO_ROOT
