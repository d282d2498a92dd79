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
from pcca_plugin.testing.inference import make_toy_root, save_tiny_checkpoint  # noqa: E402

pcca_plugin.register_all_modules()


@pytest.fixture(scope='session')
def repo_root() -> str:
    """Absolute path of the repository checkout (:data:`pcca_plugin.testing.REPO_ROOT`)."""
    return REPO_ROOT


@pytest.fixture(scope='session')
def toy_root(tmp_path_factory) -> str:
    """A folder holding ``data/toy_sports`` (the toy configs' relative data root)."""
    return make_toy_root(str(tmp_path_factory.mktemp('toy')))


@pytest.fixture(scope='session')
def tiny_checkpoint(tmp_path_factory) -> str:
    """A checkpoint of the tiny PCCA detector with seeded random weights."""
    return save_tiny_checkpoint(str(tmp_path_factory.mktemp('ckpt') / 'tiny_random.pth'))


@pytest.fixture()
def in_toy_root(toy_root, monkeypatch):
    """Run the test with the toy root as working directory."""
    monkeypatch.chdir(toy_root)
    return toy_root
