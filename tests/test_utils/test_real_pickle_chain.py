"""The whole chain runs on pickles written the way real tools write them.

Every test is parametrised by the writer style of ``pickle_styles.STYLES``:
numpy 2 ``pickle.dumps`` under protocols 0, 2, 4, 5; numpy 1.x's own
spelling (``numpy.core.multiarray._reconstruct`` + ``_codecs.encode``, the
MultiSports release's protocol 2) under protocols 0, 2, 5; and a Python 2
``cPickle`` protocol 2 with byte strings. Each step's result on such files
must equal its result on the project's own (portable) files or on the
in-memory objects: preparation, the dataset, frame-mAP, linking, video-mAP,
the metric, the evaluation command line (its package call, and once as a
command), the ensemble and the proposal evaluation, COCO conversion and video
listing. The builders are ``pcca_plugin.testing.evaluation``'s.

A GT without ``train_videos`` (the official evaluation never reads it)
evaluates; only training-data preparation refuses it, naming the key, the
file and the step.
"""

import json
import os
import pickle

import numpy as np
import pytest

from pcca_plugin.datasets import MultiSportsDataset
from pcca_plugin.datasets.preparation import prepare_multisports, split_video_names
from pcca_plugin.evaluation.functional import frame_ap, link_tubes, video_ap
from pcca_plugin.evaluation.functional.ensemble import ensemble_files
from pcca_plugin.evaluation.metrics import MultiSportsTubeMetric
from pcca_plugin.evaluation.tasks import run_task, write_json
from pcca_plugin.proposals import evaluate_proposal_file_contents
from pcca_plugin.proposals.coco_format import write_coco_files
from pcca_plugin.proposals.evaluation_report import evaluate_proposal_files
from pcca_plugin.proposals.generation import ALL_SPLITS, collect_sources
from pcca_plugin.testing import run_tool
from pcca_plugin.testing.evaluation import (
    evaluate_metric,
    gt_boxes_as_proposals,
    make_case,
    make_ensemble_dets,
    make_metric_gt,
    make_preparation_gt,
    perfect_samples,
    write_ensemble_inputs,
)
from pcca_plugin.testing.pickle_styles import STYLES, assert_same, write
from pcca_plugin.utils.multisports_format import (
    EVALUATION_GT_KEYS,
    TRAINING_PREPARATION_GT_KEYS,
    check_gt_keys,
    frame_key,
)
from pcca_plugin.utils.pickle_io import dump_pickle, dumps_pickle, load_pickle

STYLE_NAMES = sorted(STYLES)
#: The style of the real MultiSports release and of the official tools.
RELEASE_STYLE = 'numpy1-protocol2'
VIDEO_IOU_THR = 0.2
#: Shortest linked tube: the seeded cases' videos are 18 to 40 frames long.
LEN_THR = 3


def person_boxes(gt, value=(0.1, 0.1, 0.3, 0.9, 0.95)):
    """One normalised person box on every frame of every video (frame key -> (1, 5))."""
    return {
        frame_key(video, frame): np.array([value], dtype=np.float64)
        for video, nframes in gt['nframes'].items()
        for frame in range(1, nframes + 1)
    }


@pytest.mark.parametrize('style', STYLE_NAMES)
def test_preparation_and_dataset(style, tmp_path):
    gt = make_preparation_gt()
    boxes = person_boxes(gt)
    styled = prepare_multisports(
        write(gt, tmp_path / 'gt.pkl', style),
        [write(boxes, tmp_path / 'boxes.pkl', style)],
        str(tmp_path / 'styled'),
        name='tiny',
    )
    dump_pickle(gt, tmp_path / 'plain_gt.pkl')
    dump_pickle(boxes, tmp_path / 'plain_boxes.pkl')
    plain = prepare_multisports(
        str(tmp_path / 'plain_gt.pkl'),
        [str(tmp_path / 'plain_boxes.pkl')],
        str(tmp_path / 'plain'),
        name='tiny',
    )
    for key in ('train', 'val', 'proposals_train', 'proposals_val'):
        expected, actual = load_pickle(plain[key]), load_pickle(styled[key])
        if key in ('train', 'val'):  # each names its own GT file
            assert actual.pop('gt_file') == str(tmp_path / 'gt.pkl')
            expected.pop('gt_file')
        assert_same(expected, actual, key)

    # The dataset reads annotation and proposal files written in the style.
    def dataset(ann_file, proposal_file):
        return MultiSportsDataset(
            ann_file=ann_file,
            pipeline=[],
            proposal_file=proposal_file,
            data_prefix=dict(img=str(tmp_path / 'frames')),
            check_media=False,
        )

    for split in ('train', 'val'):
        reference = dataset(plain[split], plain[f'proposals_{split}'])
        ann = write(load_pickle(plain[split]), tmp_path / f'{split}_ann.pkl', style)
        props = load_pickle(plain[f'proposals_{split}'])
        read = dataset(ann, write(props, tmp_path / f'{split}_props.pkl', style))
        assert len(read) == len(reference) > 0
        for index in range(len(reference)):
            expected, actual = reference.get_data_info(index), read.get_data_info(index)
            for info in (expected, actual):
                info.pop('sample_idx', None)
            assert_same(expected, actual, f'{split}[{index}]')


@pytest.mark.parametrize('style', STYLE_NAMES)
def test_frame_map_linking_video_map_and_metric(style, tmp_path):
    gt, dets = make_case(11)
    gt_path = write(gt, tmp_path / 'gt.pkl', style)
    dets_path = write(dets, tmp_path / 'frame_dets.pkl', style)
    expected = frame_ap(gt, dets)
    result = frame_ap(gt_path, dets_path)
    assert result.mean_ap == expected.mean_ap and result.per_class == expected.per_class

    tubes = link_tubes(gt_path, dets_path, len_thr=LEN_THR)
    expected_tubes = link_tubes(gt, dets, len_thr=LEN_THR)
    assert sum(map(len, expected_tubes.values())) > 0
    assert_same(expected_tubes, tubes)
    tubes_path = write(expected_tubes, tmp_path / 'video_dets.pkl', style)
    assert (
        video_ap(gt_path, tubes_path, VIDEO_IOU_THR).per_class
        == video_ap(gt, expected_tubes, VIDEO_IOU_THR).per_class
    )

    metric_gt = make_metric_gt(num_videos=2)
    from_file = evaluate_metric(
        MultiSportsTubeMetric(write(metric_gt, tmp_path / 'metric_gt.pkl', style)),
        perfect_samples(metric_gt),
    )
    from_dict = evaluate_metric(MultiSportsTubeMetric(metric_gt), perfect_samples(metric_gt))
    assert from_file == from_dict and from_file['frame_mAP@0.5'] == pytest.approx(100.0)


def eval_multisports(task, gt_path, dets_path, json_file=None, as_command=False, **options):
    """``tools/eval_multisports.py TASK GT DETS``: as a command (subprocess) or its package call."""
    if not as_command:
        report, _ = run_task(task, gt_path, dets_path, progress=False, **options)
        if json_file:
            write_json(report, json_file)
        return
    flags = dict(thr='-t', out='-o', len_thr='--len-thr')
    arguments = [task, gt_path, dets_path, '--no-progress']
    for name, value in options.items():
        arguments += [flags[name], str(value)]
    if json_file:
        arguments += ['--json', json_file]
    result = run_tool('eval_multisports.py', *arguments)
    assert result.returncode == 0, result.stderr


#: (style, as a subprocess): every style through the package; frameAP on the release's style as
#: a command too (one process per style would repeat the interpreter start for nothing).
CLI_CASES = [pytest.param(style, False, id=style) for style in STYLE_NAMES] + [
    pytest.param(RELEASE_STYLE, True, id=f'{RELEASE_STYLE}-command')
]


@pytest.mark.parametrize('style,as_command', CLI_CASES)
def test_eval_multisports_cli(style, as_command, tmp_path):
    gt, dets = make_case(12)
    gt_path = write(gt, tmp_path / 'gt.pkl', style)
    dets_path = write(dets, tmp_path / 'frame_dets.pkl', style)
    frame_json, video_json = str(tmp_path / 'frame.json'), str(tmp_path / 'video.json')
    linked = str(tmp_path / 'linked.pkl')
    eval_multisports('frameAP', gt_path, dets_path, frame_json, as_command)
    assert json.load(open(frame_json))['frameAP']['mAP'] == frame_ap(gt, dets).mean_ap
    eval_multisports('link', gt_path, dets_path, out=linked, len_thr=LEN_THR)
    expected_tubes = link_tubes(gt, dets, len_thr=LEN_THR)
    # The CLI writes portable pickles: numpy scalars become Python scalars.
    assert_same(pickle.loads(dumps_pickle(expected_tubes)), load_pickle(linked))
    tubes_path = write(expected_tubes, tmp_path / 'video_dets.pkl', style)
    eval_multisports('videoAP', gt_path, tubes_path, video_json, thr=VIDEO_IOU_THR)
    report = json.load(open(video_json))['videoAP']
    assert report['mAP'] == video_ap(gt, expected_tubes, VIDEO_IOU_THR).mean_ap


@pytest.mark.parametrize('style', STYLE_NAMES)
def test_ensemble(style, tmp_path):
    outputs = {}
    writers = dict(plain=dump_pickle, styled=lambda obj, path: write(obj, path, style))
    for kind, writer in writers.items():
        folder = tmp_path / kind
        folder.mkdir()
        paths, gt_path = write_ensemble_inputs(str(folder), write=writer)
        out = str(folder / 'ensemble.pkl')
        ensemble_files(paths, out=out, weights=[1, 3], gt_file=gt_path)
        outputs[kind] = load_pickle(out)
    np.testing.assert_array_equal(outputs['styled'], outputs['plain'])
    expected = (make_ensemble_dets(1)[:, 3] + 3 * make_ensemble_dets(2)[:, 3]) / 4
    np.testing.assert_allclose(outputs['styled'][:, 3], expected)


@pytest.mark.parametrize('style', STYLE_NAMES)
def test_proposal_tools(style, tmp_path):
    gt = make_preparation_gt()
    val_videos = list(gt['test_videos'][0])
    gt_path = write(gt, tmp_path / 'gt.pkl', style)
    props_path = write(gt_boxes_as_proposals(gt, val_videos), tmp_path / 'props.pkl', style)
    overall = evaluate_proposal_files(props_path, gt_path, split='val')['overall']
    assert overall['AP'] == pytest.approx(100.0) and overall['AR'] == pytest.approx(100.0)

    dump_pickle(gt, tmp_path / 'plain_gt.pkl')
    styled = write_coco_files(gt_path, str(tmp_path / 'styled'), prefix='p')
    plain = write_coco_files(str(tmp_path / 'plain_gt.pkl'), str(tmp_path / 'plain'), prefix='p')
    for (a, _), (b, _) in zip(plain.values(), styled.values()):
        expected, actual = json.load(open(a)), json.load(open(b))
        assert actual.pop('info')['description'].endswith(gt_path)  # names its own GT file
        expected.pop('info')
        assert actual == expected

    frame_root = tmp_path / 'frames'
    for video in gt['nframes']:
        os.makedirs(frame_root / video)
    sources = collect_sources(gt_file=gt_path, split=ALL_SPLITS, frame_root=str(frame_root))
    assert [source.name for source in sources] == list(gt['train_videos'][0]) + val_videos


# --- a GT without train_videos: each step asks only for the keys it reads -----------------


@pytest.fixture
def release_gt_without_train_videos(tmp_path):
    """``make_case``'s GT minus ``train_videos``, written as the MultiSports release writes."""
    gt, dets = make_case(13)
    del gt['train_videos']
    return gt, dets, write(gt, tmp_path / 'gt.pkl', RELEASE_STYLE)


def test_gt_without_train_videos_evaluates(release_gt_without_train_videos, tmp_path):
    gt, dets, gt_path = release_gt_without_train_videos
    assert 'train_videos' not in load_pickle(gt_path)
    dets_path = write(dets, tmp_path / 'dets.pkl', RELEASE_STYLE)
    assert frame_ap(gt_path, dets_path).mean_ap == frame_ap(gt, dets).mean_ap
    tubes = link_tubes(gt_path, dets_path, len_thr=LEN_THR)
    assert video_ap(gt_path, tubes, VIDEO_IOU_THR).mean_ap == video_ap(gt, tubes, 0.2).mean_ap
    eval_multisports('frameAP', gt_path, dets_path, str(tmp_path / 'f.json'))
    assert json.load(open(tmp_path / 'f.json'))['frameAP']['mAP'] == frame_ap(gt, dets).mean_ap

    metric_gt = make_metric_gt(num_videos=2)
    del metric_gt['train_videos']
    metric = MultiSportsTubeMetric(write(metric_gt, tmp_path / 'metric_gt.pkl', RELEASE_STYLE))
    assert evaluate_metric(metric, perfect_samples(metric_gt))['frame_mAP@0.5'] == pytest.approx(
        100.0
    )

    # Proposals of the validation split need no train_videos either; the train split does.
    proposals = gt_boxes_as_proposals(gt, gt['test_videos'][0])
    overall = evaluate_proposal_file_contents(proposals, gt, split='val')['overall']
    assert overall['AP'] == pytest.approx(100.0)
    with pytest.raises(KeyError) as info:
        evaluate_proposal_file_contents(proposals, load_pickle(gt_path), 'train', gt_source=gt_path)
    assert all(s in str(info.value) for s in ("['train_videos']", gt_path, 'the train videos'))


def test_gt_without_train_videos_is_refused_by_training_preparation_only(
    release_gt_without_train_videos, tmp_path
):
    gt, _, gt_path = release_gt_without_train_videos
    boxes_path = write(person_boxes(gt), tmp_path / 'boxes.pkl', RELEASE_STYLE)
    out_dir = tmp_path / 'annotations'
    with pytest.raises(KeyError) as info:
        prepare_multisports(gt_path, [boxes_path], str(out_dir), name='real')
    message = str(info.value)
    assert f"{gt_path}: MultiSports GT is missing the keys ['train_videos']" in message
    assert 'training-data preparation' in message
    assert not out_dir.exists() or not os.listdir(out_dir), 'half-written output'
    # Listing the training videos (e.g. to check or decode them) names the key and file too.
    with pytest.raises(KeyError, match=r"gt.pkl: MultiSports GT is missing the keys \['train_v"):
        split_video_names(load_pickle(gt_path), 'train', gt_path)
    assert split_video_names(load_pickle(gt_path), 'val', gt_path) == gt['test_videos'][0]


def test_check_gt_keys_names_key_file_and_step():
    gt = make_case(1)[0]
    check_gt_keys(gt, 'gt.pkl', EVALUATION_GT_KEYS, 'evaluation')
    del gt['train_videos'], gt['gttubes']
    check_gt_keys(gt, 'gt.pkl', ('labels',), 'listing labels')
    with pytest.raises(KeyError) as info:
        check_gt_keys(gt, 'gt.pkl', TRAINING_PREPARATION_GT_KEYS, 'training-data preparation')
    message = str(info.value)
    assert "gt.pkl: MultiSports GT is missing the keys ['gttubes', 'train_videos']" in message
    assert 'which training-data preparation needs' in message
    with pytest.raises(TypeError, match='gt.pkl: a MultiSports GT file holds a dict'):
        check_gt_keys([1], 'gt.pkl', EVALUATION_GT_KEYS, 'evaluation')
