"""tools/plot_curves.py on real mmengine runs: the PNG, what it prints, its one-line errors.

The reader and the plots are tested as the package in
tests/test_visualization/test_training_curves.py.
"""

import numpy as np
import pytest
from matplotlib import colors as mcolors
from PIL import Image

from pcca_plugin.testing import run_tool
from pcca_plugin.testing.toy_runner import METRIC, train_two_runs

#: matplotlib's first two default colours (the two runs' lines).
RUN_COLOURS = ('tab:blue', 'tab:orange')


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """run_a: 3 epochs. run_b: 2 epochs, then resumed to 4 in a new timestamp folder."""
    return train_two_runs(tmp_path_factory.mktemp('curves'))


def test_command_line_draws_both_runs_into_a_png(runs, tmp_path):
    out = tmp_path / 'figures' / 'curves.png'
    root = runs['root']
    result = run_tool('plot_curves.py', root / 'run_a', root / 'run_b', '--out', out)
    assert result.returncode == 0, result.stderr[-3000:]
    printed = result.stdout
    assert 'run_a: 1 scalars.json' in printed and 'run_b: 2 scalars.json' in printed
    assert f'3 panels (loss, lr, {METRIC} (validation))' in printed
    image = np.asarray(Image.open(out).convert('RGB'))
    assert image.shape[0] > 200 and image.shape[1] > 600
    for colour in RUN_COLOURS:  # a line of each run was drawn
        rgb = np.round(np.array(mcolors.to_rgb(colour)) * 255)
        close = np.abs(image.astype(int) - rgb).max(axis=-1) <= 10
        assert close.sum() > 100, colour
    assert not list(out.parent.glob('tmp*')), 'the temporary file was left behind'


def test_a_work_dir_without_scalars_is_one_line_naming_the_folder_and_the_fix(tmp_path):
    # A test-only run leaves a timestamp folder without scalars.json.
    (tmp_path / 'tested' / '20260101_000000' / 'vis_data').mkdir(parents=True)
    result = run_tool('plot_curves.py', tmp_path / 'tested', '--out', tmp_path / 'x.png')
    assert result.returncode != 0
    assert str(tmp_path / 'tested') in result.stderr and 'LocalVisBackend' in result.stderr
    assert 'plot_curves.py: error:' in result.stderr and 'Traceback' not in result.stderr
    assert not (tmp_path / 'x.png').exists()
    # --debug shows where it came from.
    debug = run_tool('plot_curves.py', tmp_path / 'tested', '--out', tmp_path / 'x.png', '--debug')
    assert debug.returncode != 0 and 'Traceback' in debug.stderr
    assert 'ScalarsNotFoundError' in debug.stderr
