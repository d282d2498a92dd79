"""``tools/data/make_toy_sports.py``: the command of docs/data.md writes what the package writes.

The generator itself is tested as the package in tests/test_datasets/test_toy_sports.py.
"""

import filecmp
import os.path as osp

from pcca_plugin.datasets.toy_sports import make_toy_sports
from pcca_plugin.testing import run_tool

#: A few small videos (the command line sets these three sizes, the rest are defaults).
SIZES = dict(num_train_videos=3, num_val_videos=2, num_frames=24)
SEED = 7


def test_the_command_line_writes_the_same_bytes_as_the_package(tmp_path):
    out = tmp_path / 'cli'
    result = run_tool(
        'data/make_toy_sports.py',
        out,
        '--seed',
        SEED,
        '--num-train-videos',
        SIZES['num_train_videos'],
        '--num-val-videos',
        SIZES['num_val_videos'],
        '--num-frames',
        SIZES['num_frames'],
        '--clip-level',
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'toy-sports: 5 videos, 120 frames in ' in result.stdout and str(out) in result.stdout
    summary = make_toy_sports(str(tmp_path / 'package'), seed=SEED, **SIZES)
    for path in [summary['gt_file'], *summary['proposal_files']]:
        relative = osp.relpath(path, str(tmp_path / 'package'))
        assert filecmp.cmp(path, str(out / relative), shallow=False), relative
    for split in ('train', 'val'):
        assert (out / 'annotations' / f'toy_sports_{split}.pkl').is_file()
    assert (out / 'annotations' / 'toy_sports_clips_train.pkl').is_file()  # --clip-level


def test_clip_level_without_preparation_is_refused_before_generating(tmp_path):
    out = tmp_path / 'toy'
    result = run_tool('data/make_toy_sports.py', out, '--clip-level', '--no-prepare')
    assert result.returncode == 2  # argparse's usage error
    assert '--clip-level needs the annotations that --no-prepare skips' in result.stderr
    assert not out.exists()
