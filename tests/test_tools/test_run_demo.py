"""The main job (`make demo --quick`) end to end: outputs, sane metrics, resume, bad work dirs."""

import json
import os

import numpy as np
import pytest
import run_demo  # tools/ (see tests/conftest.py)

from pcca_plugin.evaluation.functional import frame_ap, load_ground_truth
from pcca_plugin.utils.pickle_io import load_pickle

MODELS = ('linear', 'pcca', 'decoupled')
OUTPUTS = ('results_json', 'results_md', 'per_class_png', 'annotated_mp4', 'annotated_gif')


class Interrupted(Exception):
    """Stands for a Ctrl-C in the middle of a stage."""


def chance_frame_map(gt_file: str, frame_detections_file: str, seed: int = 0) -> float:
    """frame-mAP of the same detections with their scores shuffled (a chance baseline)."""
    detections = load_pickle(frame_detections_file).copy()
    rng = np.random.default_rng(seed)
    detections[:, 3] = rng.permutation(detections[:, 3])
    return frame_ap(load_ground_truth(gt_file), detections, 0.5).mean_ap


@pytest.fixture(scope='module')
def quick_demo(tmp_path_factory):
    """Run --quick once, interrupted in the middle of the pcca test stage, then resumed."""
    work_dir = str(tmp_path_factory.mktemp('demo'))
    real_test_stage = run_demo.test_stage

    def failing_test_stage(model, *args, **kwargs):
        if model == 'pcca':
            raise Interrupted
        return real_test_stage(model, *args, **kwargs)

    run_demo.test_stage = failing_test_stage
    try:
        with pytest.raises(Interrupted):
            run_demo.main(['--quick', '--work-dir', work_dir])
    finally:
        run_demo.test_stage = real_test_stage
    with open(os.path.join(work_dir, run_demo.STATE_FILE)) as f:
        first_state = json.load(f)
    checkpoint = first_state['stages']['train_pcca']['outputs']['checkpoint']
    checkpoint_mtime = os.path.getmtime(checkpoint)
    report = run_demo.main(['--quick', '--work-dir', work_dir])
    return dict(
        work_dir=work_dir,
        first_state=first_state,
        report=report,
        checkpoint=checkpoint,
        checkpoint_mtime=checkpoint_mtime,
    )


def test_every_output_exists(quick_demo):
    for name in OUTPUTS:
        path = quick_demo['report'][name]
        assert os.path.isfile(path) and os.path.getsize(path) > 0, name


def test_metrics_finite_and_above_chance(quick_demo):
    with open(quick_demo['report']['results_json']) as f:
        results = json.load(f)
    with open(os.path.join(quick_demo['work_dir'], run_demo.STATE_FILE)) as f:
        state = json.load(f)
    gt_file = state['stages']['data']['outputs']['gt_file']
    for model in MODELS:
        table = results['table'][model]
        for key, _ in run_demo.TABLE_COLUMNS:
            assert np.isfinite(table[key]) and 0 <= table[key] <= 100, (model, key)
        detections = state['stages'][f'test_{model}']['outputs']['frame_detections']
        chance = chance_frame_map(gt_file, detections)
        assert table['frame_mAP@0.5'] > chance, (model, table['frame_mAP@0.5'], chance)


def test_interrupted_run_resumes_without_recomputing(quick_demo):
    first = quick_demo['first_state']['stages']
    # Before the interruption: data, the three trainings and the linear test finished.
    assert set(first) == {'data', 'train_linear', 'train_pcca', 'train_decoupled', 'test_linear'}
    with open(os.path.join(quick_demo['work_dir'], run_demo.STATE_FILE)) as f:
        final = json.load(f)['stages']
    for stage, record in first.items():
        assert final[stage] == record, f'{stage} was recomputed'
    assert os.path.getmtime(quick_demo['checkpoint']) == quick_demo['checkpoint_mtime']
    assert {'test_pcca', 'test_decoupled', 'report'} <= set(final)


def test_unwritable_work_dir_fails_before_training(tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a folder')
    with pytest.raises(run_demo.DemoError, match='not writable'):
        run_demo.check_work_dir(str(blocker / 'demo'))


def test_full_disk_fails_before_training(tmp_path):
    with pytest.raises(run_demo.DemoError, match='MiB free'):
        run_demo.check_work_dir(str(tmp_path), required_mb=10**12)


def test_other_settings_in_the_same_work_dir_are_refused(tmp_path):
    state = run_demo.StageState(str(tmp_path / 'state.json'), run_demo.DemoSettings.quick(), 0)
    state.finish('data', {}, 1.0)
    with pytest.raises(run_demo.DemoError, match='other settings'):
        run_demo.StageState(str(tmp_path / 'state.json'), run_demo.DemoSettings.full(), 0)


def test_a_saved_state_reopens_with_the_same_settings(tmp_path):
    # The full settings hold tuples (tube lengths), which the JSON file stores as lists.
    state = run_demo.StageState(str(tmp_path / 'state.json'), run_demo.DemoSettings.full(), 0)
    state.finish('data', {'data_root': 'x'}, 1.0)
    reopened = run_demo.StageState(str(tmp_path / 'state.json'), run_demo.DemoSettings.full(), 0)
    assert reopened.done('data') and reopened.outputs('data') == {'data_root': 'x'}
