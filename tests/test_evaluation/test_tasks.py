"""The tasks of the evaluation command line on files: official shape, JSON figures, plots, links.

``tools/eval_multisports.py`` is a thin command line over ``run_task``; its own
tests (command shape, one-line errors, start-up time) are in
``tests/test_tools/test_eval_multisports.py``.
"""

import json
import os.path as osp

import pytest

from pcca_plugin.evaluation.functional import frame_ap, link_tubes, video_ap, video_ap_error
from pcca_plugin.evaluation.tasks import run_task, write_json
from pcca_plugin.testing.evaluation import make_case
from pcca_plugin.utils.pickle_io import dump_pickle, load_pickle


@pytest.fixture
def files(tmp_path):
    gt, dets = make_case(11)
    paths = dict(gt=str(tmp_path / 'gt.pkl'), frame=str(tmp_path / 'frame_detections.pkl'))
    dump_pickle(gt, paths['gt'])
    dump_pickle(dets, paths['frame'])
    return gt, dets, paths


def test_frame_ap_json_and_plots(files, tmp_path):
    gt, dets, paths = files
    report, lines = run_task(
        'frameAP',
        paths['gt'],
        paths['frame'],
        0.5,
        plot_dir=str(tmp_path / 'plots'),
        progress=False,
    )
    out = str(tmp_path / 'frame.json')
    write_json(report, out)
    report = json.load(open(out))
    expected = frame_ap(gt, dets, 0.5)
    assert report['frameAP']['mAP'] == expected.mean_ap
    assert report['frameAP']['per_class'] == expected.per_class
    assert 'frameAP_0.5' in '\n'.join(lines)
    for path in report['plots']:
        assert osp.getsize(path) > 1000 and open(path, 'rb').read(4) == b'\x89PNG'
    assert len(report['plots']) == 2  # bars and PR curves


def test_link_then_video_tasks(files, tmp_path):
    gt, dets, paths = files
    video_path = str(tmp_path / 'video_detections.pkl')
    run_task('link', paths['gt'], paths['frame'], out=video_path, len_thr=3, progress=False)
    tubes = load_pickle(video_path)
    expected_tubes = link_tubes(gt, dets, len_thr=3)
    assert sum(map(len, tubes.values())) == sum(map(len, expected_tubes.values())) > 0
    report, _ = run_task('videoAP', paths['gt'], video_path, 0.2, progress=False)
    assert report['videoAP']['mAP'] == video_ap(gt, expected_tubes, 0.2).mean_ap
    report, lines = run_task('videoAP_all', paths['gt'], video_path, progress=False)
    assert set(report['videoAP_all']) == {'0.05:0.45', '0.10:0.90', '0.50:0.95'}
    assert report['per_threshold']['0.20']['mAP'] == video_ap(gt, expected_tubes, 0.2).mean_ap
    assert any('VideoAP_0.10:0.90' in line for line in lines)
    report, lines = run_task('videoAP_error', paths['gt'], video_path, progress=False)
    errors = json.loads(json.dumps(report))['videoAP_error']
    assert errors['mean'] == video_ap_error(gt, expected_tubes, 0.5)['mean']
    assert lines[0].startswith('Error Analysis') and lines[-1].startswith('mean')


def test_link_requires_output_and_tasks_are_named(files):
    _, _, paths = files
    with pytest.raises(ValueError, match='link writes the video detections'):
        run_task('link', paths['gt'], paths['frame'])
    with pytest.raises(ValueError, match="unknown task 'frameap'"):
        run_task('frameap', paths['gt'], paths['frame'])
