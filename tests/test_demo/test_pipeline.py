"""The demo's pipeline (pcca_plugin.demo.pipeline): state, work dirs, seed processes, the summary.

The end-to-end run (``--quick``: data, training, tests, report, resume) is in
tests/test_tools/test_run_demo.py; here the parts that need no training, on
constructed seeds (:mod:`pcca_plugin.testing.demo`).
"""

import json
import os

import pytest

from pcca_plugin.demo import pipeline
from pcca_plugin.demo.settings import STATE_FILE, DemoError, DemoSettings, seed_work_dir
from pcca_plugin.testing.demo import PASSING_SEED, failing, write_seed


def test_unwritable_work_dir_fails_before_training(tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a folder')
    with pytest.raises(DemoError, match='not writable'):
        pipeline.check_work_dir(str(blocker / 'demo'))


def test_full_disk_fails_before_training(tmp_path):
    with pytest.raises(DemoError, match='MiB free'):
        pipeline.check_work_dir(str(tmp_path), required_mb=10**12)


def test_other_settings_in_the_same_work_dir_are_refused(tmp_path):
    state = pipeline.StageState(str(tmp_path / 'state.json'), DemoSettings.quick(), 0)
    state.finish('data', {}, 1.0)
    with pytest.raises(DemoError, match='other settings'):
        pipeline.StageState(str(tmp_path / 'state.json'), DemoSettings.full(), 0)


def test_a_saved_state_reopens_with_the_same_settings(tmp_path):
    # The full settings hold tuples (tube lengths), which the JSON file stores as lists.
    state = pipeline.StageState(str(tmp_path / 'state.json'), DemoSettings.full(), 0)
    state.finish('data', {'data_root': 'x'}, 1.0)
    reopened = pipeline.StageState(str(tmp_path / 'state.json'), DemoSettings.full(), 0)
    assert reopened.done('data') and reopened.outputs('data') == {'data_root': 'x'}


def test_a_failing_seed_process_stops_the_run_and_names_its_log(tmp_path):
    """Seed 7's folder holds a run with other settings: its process refuses to start, and
    the parent says which seed failed and where its output is."""
    seed_dir = seed_work_dir(str(tmp_path), 7)
    os.makedirs(seed_dir)
    other = pipeline.StageState(os.path.join(seed_dir, STATE_FILE), DemoSettings.full(), 7)
    other.finish('data', {}, 1.0)
    with pytest.raises(DemoError, match=r'seed 7 failed; its output is in .*demo\.log'):
        pipeline.run_seeds_in_parallel([7], str(tmp_path), quick=True, jobs=1)
    with open(os.path.join(seed_dir, 'demo.log')) as f:
        assert 'other settings' in f.read()


def test_each_seed_once(tmp_path):
    with pytest.raises(DemoError, match='each seed once'):
        pipeline.run_demo(str(tmp_path), seeds=[0, 0], quick=True)


def test_rebase_paths_moves_only_the_data_root():
    cfg = dict(ann=['data/toy_sports/a.pkl', 'data/other/b.pkl'], n=3, t=('data/toy_sports',))
    rebased = pipeline.rebase_paths(cfg, 'data/toy_sports', '/tmp/seed_0/data')
    assert rebased == dict(
        ann=['/tmp/seed_0/data/a.pkl', 'data/other/b.pkl'], n=3, t=('/tmp/seed_0/data',)
    )


def test_quick_demo_reports_a_failed_claim_without_failing(tmp_path, capsys):
    settings = DemoSettings.quick()
    write_seed(tmp_path, 0, PASSING_SEED, settings)
    write_seed(tmp_path, 1, failing('pcca_beats_linear'), settings)
    report = pipeline.run_demo(str(tmp_path), seeds=[0, 1], jobs=1, quick=True)
    printed = capsys.readouterr().out
    assert 'stage 1/9 data: already done' in printed  # the constructed seeds were used
    assert '[demo] FAIL: PCCA beats linear on F@0.5 on every seed' in printed
    with open(report['results_md']) as f:
        text = f.read()
    assert '- FAIL: PCCA beats linear' in text and 'printed, not enforced' in text
    with open(report['results_json']) as f:
        assert json.load(f)['quick'] is True
