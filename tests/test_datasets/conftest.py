"""A small generated toy-sports dataset shared by the data tests (made once per session)."""

import pytest

from pcca_plugin.datasets.toy_sports import make_toy_sports

#: Sizes small enough that generation plus preparation take about a second.
SMALL_SIZES = dict(
    num_train_videos=4,
    num_val_videos=3,
    num_frames=12,
    head_tube_len=(6, 9),
    tail_tubes=dict(train=1, val=1),
)


@pytest.fixture(scope='session')
def small_toy(tmp_path_factory):
    """Generated media, GT and proposals (no annotations: the tests prepare them)."""
    root = str(tmp_path_factory.mktemp('toy_sports'))
    summary = make_toy_sports(root, seed=3, prepare=False, **SMALL_SIZES)
    summary['root'] = root
    return summary
