"""Fixtures for the model tests (the plain helpers are in :mod:`pcca_plugin.testing.models`)."""

import pytest
from mmengine.registry import DefaultScope

from pcca_plugin.testing.models import build_model


@pytest.fixture()
def tiny_model():
    """The tiny SlowFast + PCCA detector, seeded random weights."""
    return build_model()


@pytest.fixture(autouse=True)
def mmdet_default_scope():
    """Build in mmdet's scope, as FastRCNN does: other tests' Runners leave 'mmaction' set."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield
