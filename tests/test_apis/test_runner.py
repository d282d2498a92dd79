"""pcca_plugin.apis.runner: the config of a run, the options that do not go together, the CLI.

The runs themselves (one process, DDP, Slurm, TTA, AMP) are tested where their
parts live: ``tests/test_engine/test_distributed.py``, ``tests/test_tools/test_slurm.py``,
``tests/test_models/test_tta.py``, ``tests/test_engine/test_amp.py``.
"""

import os.path as osp
import runpy

import pytest
from mmengine.config import Config

from pcca_plugin.apis import (
    RESUME_LATEST,
    load_run_config,
    run_test,
    set_detection_dumps,
    tube_metric_configs,
)
from pcca_plugin.testing import repo_path, run_tool
from pcca_plugin.testing.inference import TINY_PCCA

TINY_NAME = osp.splitext(osp.basename(TINY_PCCA))[0]


def test_run_config_merges_options_and_names_the_work_dir(tmp_path):
    cfg = load_run_config(TINY_PCCA, cfg_options={'train_cfg.max_epochs': 1})
    assert cfg.train_cfg.max_epochs == 1
    assert cfg.work_dir == osp.join('work_dirs', TINY_NAME)
    assert cfg.launcher == 'none'
    assert load_run_config(TINY_PCCA, work_dir=str(tmp_path)).work_dir == str(tmp_path)
    with pytest.raises(FileNotFoundError, match='absent.py: no such config file'):
        load_run_config(str(tmp_path / 'absent.py'))
    assert RESUME_LATEST == 'auto'  # tools/train.py --resume without a checkpoint


def test_detection_dumps_go_to_every_tube_metric():
    cfg = set_detection_dumps(Config.fromfile(TINY_PCCA), 'frames.pkl', None)
    (metric,) = tube_metric_configs(cfg, '--dump-frame-detections')
    assert metric['dump_frame_detections'] == 'frames.pkl'
    assert 'dump_video_detections' not in metric
    cfg.test_evaluator = dict(type='AccMetric')
    with pytest.raises(ValueError, match='--dump-\\*-detections needs a MultiSportsTubeMetric'):
        set_detection_dumps(cfg, 'frames.pkl', 'tubes.pkl')


def test_options_that_do_not_go_together_are_refused_before_the_runner(tmp_path):
    checkpoint = tmp_path / 'model.pth'
    checkpoint.write_bytes(b'')
    work_dir = tmp_path / 'work'
    with pytest.raises(FileNotFoundError, match='absent.pth: no such checkpoint file'):
        run_test(TINY_PCCA, str(tmp_path / 'absent.pth'), work_dir=str(work_dir))
    with pytest.raises(ValueError, match='drop --dump-\\*-detections'):
        run_test(TINY_PCCA, str(checkpoint), test_split=True, dump_frame_detections='f.pkl')
    with pytest.raises(ValueError, match='--outfile-prefix is for --format-only'):
        run_test(TINY_PCCA, str(checkpoint), outfile_prefix='work_dirs/x')
    with pytest.raises(ValueError, match='--zip archives the submission files of --format-only'):
        run_test(TINY_PCCA, str(checkpoint), archive=True)
    assert not work_dir.exists()


def test_zip_without_a_format_only_run_is_a_usage_error(capsys):
    """tools/test.py's own parser (loaded in process: the tool's imports are done already)."""
    parse_args = runpy.run_path(repo_path('tools', 'test.py'))['parse_args']
    with pytest.raises(SystemExit) as info:
        parse_args([TINY_PCCA, 'model.pth', '--zip'])
    assert info.value.code == 2
    assert 'error: --zip archives the submission files of --format-only' in capsys.readouterr().err
    args = parse_args([TINY_PCCA, 'model.pth', '--test-split', '--outfile-prefix', 'p', '--zip'])
    assert args.zip and args.test_split


def test_the_command_line_reports_bad_input_in_one_line(tmp_path):
    """tools/test.py: a missing checkpoint in one line (exit 1), its traceback with --debug;
    options that do not go together are a usage error (exit 2)."""
    missing = str(tmp_path / 'absent.pth')
    result = run_tool('test.py', TINY_PCCA, missing)
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f'test.py: error: {missing}: no such checkpoint file (rerun with --debug for the traceback)'
    )
    result = run_tool('test.py', TINY_PCCA, missing, '--debug')
    assert result.returncode == 1 and 'Traceback (most recent call last)' in result.stderr
    assert f'FileNotFoundError: {missing}: no such checkpoint file' in result.stderr
    result = run_tool('test.py', TINY_PCCA, missing, '--test-split', '--dump-frame-detections', 'f')
    assert result.returncode == 2 and 'drop --dump-*-detections' in result.stderr
