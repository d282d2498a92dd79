"""Fixtures for the inference tests: a small toy-sports dataset and a tiny checkpoint."""

import pytest
import torch

from .helpers import CONFIG_DATA_ROOT, TOY_SIZES, build_tiny_detector


@pytest.fixture(scope='session')
def toy_root(tmp_path_factory) -> str:
    """A folder holding ``data/toy_sports`` (the configs' relative data root)."""
    from make_toy_sports import make_toy_sports  # tools/data (see tests/conftest.py)

    root = tmp_path_factory.mktemp('toy')
    make_toy_sports(str(root / CONFIG_DATA_ROOT), seed=0, **TOY_SIZES)
    return str(root)


@pytest.fixture(scope='session')
def tiny_checkpoint(tmp_path_factory) -> str:
    """A checkpoint of the tiny detector with seeded random weights."""
    path = tmp_path_factory.mktemp('ckpt') / 'tiny_random.pth'
    torch.save({'state_dict': build_tiny_detector().state_dict(), 'meta': {}}, str(path))
    return str(path)


@pytest.fixture()
def in_toy_root(toy_root, monkeypatch):
    """Run the test with the toy root as working directory."""
    monkeypatch.chdir(toy_root)
    return toy_root
