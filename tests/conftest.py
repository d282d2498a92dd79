"""Shared pytest setup: register the plugin's components, as every script does.

Shared plain helpers live in :mod:`pcca_plugin.testing`; this file holds only
what pytest itself needs.
"""

import os

import pytest

# Tests run on small CPU machines; keep thread pools from oversubscribing them.
os.environ.setdefault('OMP_NUM_THREADS', '2')
os.environ.setdefault('MKL_NUM_THREADS', '2')

import pcca_plugin  # noqa: E402
from pcca_plugin.testing import REPO_ROOT  # noqa: E402

pcca_plugin.register_all_modules()


@pytest.fixture(scope='session')
def repo_root() -> str:
    """Absolute path of the repository checkout (:data:`pcca_plugin.testing.REPO_ROOT`)."""
    return REPO_ROOT
