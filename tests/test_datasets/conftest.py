"""A small generated toy-sports dataset shared by the data tests (made once per session)."""

import importlib.util
import os.path as osp

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: Sizes small enough that generation plus preparation take about a second.
SMALL_SIZES = dict(
    num_train_videos=4,
    num_val_videos=3,
    num_frames=12,
    head_tube_len=(6, 9),
    tail_tubes=dict(train=1, val=1),
)


def load_tool(relative_path: str, module_name: str):
    """Import a script under tools/ as a module."""
    spec = importlib.util.spec_from_file_location(module_name, osp.join(REPO_ROOT, relative_path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def toy_module():
    return importlib.import_module('pcca_plugin.datasets.toy_sports')


@pytest.fixture(scope='session')
def prepare_tool():
    return load_tool('tools/data/multisports/prepare_multisports.py', 'prepare_multisports')


@pytest.fixture(scope='session')
def small_toy(tmp_path_factory, toy_module):
    """Generated media, GT and proposals (no annotations: the tests run the tool)."""
    root = str(tmp_path_factory.mktemp('toy_sports'))
    summary = toy_module.make_toy_sports(root, seed=3, prepare=False, **SMALL_SIZES)
    summary['root'] = root
    return summary
