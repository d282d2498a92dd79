"""tools/eval_multisports.py: official command shape, JSON figures, plots, linking to a file."""

import importlib.util
import json
import os.path as osp

import pytest

from pcca_plugin.evaluation.functional import frame_ap, link_tubes, video_ap, video_ap_error
from pcca_plugin.utils.pickle_io import dump_pickle, load_pickle

from .cases import make_case


@pytest.fixture(scope='module')
def cli(repo_root):
    spec = importlib.util.spec_from_file_location(
        'eval_multisports', osp.join(repo_root, 'tools', 'eval_multisports.py')
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def files(tmp_path):
    gt, dets = make_case(11)
    paths = dict(gt=str(tmp_path / 'gt.pkl'), frame=str(tmp_path / 'frame_detections.pkl'))
    dump_pickle(gt, paths['gt'])
    dump_pickle(dets, paths['frame'])
    return gt, dets, paths


def test_frame_ap_json_and_plots(cli, files, tmp_path, capsys):
    gt, dets, paths = files
    out = str(tmp_path / 'frame.json')
    cli.main(
        [
            'frameAP',
            paths['gt'],
            paths['frame'],
            '-t',
            '0.5',
            '--json',
            out,
            '--plot',
            str(tmp_path / 'plots'),
            '--no-progress',
        ]
    )
    report = json.load(open(out))
    expected = frame_ap(gt, dets, 0.5)
    assert report['frameAP']['mAP'] == expected.mean_ap
    assert report['frameAP']['per_class'] == expected.per_class
    assert 'frameAP_0.5' in capsys.readouterr().out
    for path in report['plots']:
        assert osp.getsize(path) > 1000 and open(path, 'rb').read(4) == b'\x89PNG'
    assert len(report['plots']) == 2  # bars and PR curves


def test_link_then_video_tasks(cli, files, tmp_path):
    gt, dets, paths = files
    video_path = str(tmp_path / 'video_detections.pkl')
    cli.main(
        ['link', paths['gt'], paths['frame'], '-o', video_path, '--len-thr', '3', '--no-progress']
    )
    tubes = load_pickle(video_path)
    expected_tubes = link_tubes(gt, dets, len_thr=3)
    assert sum(map(len, tubes.values())) == sum(map(len, expected_tubes.values())) > 0
    out = str(tmp_path / 'video.json')
    cli.main(['videoAP', paths['gt'], video_path, '-t', '0.2', '--json', out, '--no-progress'])
    assert json.load(open(out))['videoAP']['mAP'] == video_ap(gt, expected_tubes, 0.2).mean_ap
    cli.main(['videoAP_all', paths['gt'], video_path, '--json', out, '--no-progress'])
    report = json.load(open(out))
    assert set(report['videoAP_all']) == {'0.05:0.45', '0.10:0.90', '0.50:0.95'}
    assert report['per_threshold']['0.20']['mAP'] == video_ap(gt, expected_tubes, 0.2).mean_ap
    cli.main(['videoAP_error', paths['gt'], video_path, '--json', out, '--no-progress'])
    errors = json.load(open(out))['videoAP_error']
    assert errors['mean'] == video_ap_error(gt, expected_tubes, 0.5)['mean']


def test_link_requires_output(cli, files):
    _, _, paths = files
    with pytest.raises(SystemExit):
        cli.main(['link', paths['gt'], paths['frame']])
