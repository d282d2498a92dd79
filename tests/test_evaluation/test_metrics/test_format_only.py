"""MultiSportsTubeMetric(format_only=True): submission files without GT, exact to the GT path."""

import json
import pickle
import random

import numpy as np
import pytest
import torch

from pcca_plugin.evaluation.functional import (
    frame_ap,
    link_tubes,
    load_ground_truth,
    read_submission,
    server2021_figures,
)
from pcca_plugin.evaluation.functional.submission import (
    VideoList,
    read_video_list,
    video_list_ground_truth,
    write_submission,
)
from pcca_plugin.evaluation.metrics import MultiSportsTubeMetric
from pcca_plugin.testing.evaluation import METRIC_KEYS, make_metric_gt, perfect_samples
from pcca_plugin.utils.pickle_io import load_pickle

#: Modules of the numpy names a numpy 1.x unpickler can resolve (numpy 2 adds numpy._core).
NUMPY1_MODULES = ('numpy', 'numpy.core.multiarray', 'numpy.core.numeric')


def pickled_globals(path):
    """``(module, name)`` of every global a pickle file names (an unpickler that records)."""
    names = set()

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            names.add((module, name))
            return super().find_class(module, name)

    with open(path, 'rb') as f:
        Recorder(f).load()
    return names


def dataset_meta(gt, with_classes=True):
    """What MultiSportsDataset puts into its metainfo in test mode (no GT needed)."""
    videos = list(gt['test_videos'][0])
    meta = dict(
        videos=tuple(videos),
        nframes={v: gt['nframes'][v] for v in videos},
        resolution={v: tuple(gt['resolution'][v]) for v in videos},
    )
    if with_classes:
        meta['classes'] = tuple(gt['labels'])
    return meta


def noisy_samples(gt, seed=0):
    """Perfect boxes with random scores on every class: ranks without ties, many tubes."""
    rng = np.random.default_rng(seed)
    samples = perfect_samples(gt)
    for sample in samples:
        scores = sample['pred_instances']['scores']
        scores += torch.from_numpy(rng.uniform(0, 0.5, tuple(scores.shape)).astype(np.float32))
    return samples


def _tubes_equal(a, b):
    assert sorted(a) == sorted(b)
    for label in a:
        assert len(a[label]) == len(b[label])
        for (name, score, tube), (name2, score2, tube2) in zip(a[label], b[label]):
            assert name == name2 and score == score2
            np.testing.assert_array_equal(tube, tube2)


@pytest.mark.parametrize('with_classes', [True, False])
def test_format_only_writes_what_the_gt_path_evaluates(tmp_path, with_classes):
    gt = make_metric_gt(num_videos=3)
    samples = noisy_samples(gt)
    reference = MultiSportsTubeMetric(gt_file=gt, log_per_class=False)
    reference.dump_frame_detections = str(tmp_path / 'ref_frames.pkl')
    reference.process({}, samples)
    metrics = reference.compute_metrics(reference.results)

    prefix = str(tmp_path / 'out' / 'sub')
    metric = MultiSportsTubeMetric(format_only=True, outfile_prefix=prefix)
    metric.dataset_meta = dataset_meta(gt, with_classes)
    shuffled = list(samples)
    random.Random(0).shuffle(shuffled)  # ranks collect in any order
    metric.process({}, shuffled)
    assert metric.compute_metrics(metric.results) == {}

    dets = load_pickle(prefix + '_frame_detections.pkl')
    np.testing.assert_array_equal(dets, load_pickle(str(tmp_path / 'ref_frames.pkl')))
    assert frame_ap(gt, dets).mean_ap == pytest.approx(metrics[METRIC_KEYS[0]], abs=1e-6)
    videos = read_video_list(prefix + '_videos.json')
    assert videos.names == list(gt['test_videos'][0])
    if with_classes:
        assert videos.labels == gt['labels']
    else:
        assert len(videos.labels) == len(gt['labels'])
    tubes = load_pickle(prefix + '_video_detections.pkl')
    assert sum(len(v) for v in tubes.values()) > 0
    _tubes_equal(tubes, link_tubes(gt, dets))
    for suffix in ('_frame_detections.pkl', '_video_detections.pkl'):
        names = pickled_globals(prefix + suffix)
        numpy_names = {(m, n) for m, n in names if m.split('.')[0] == 'numpy'}
        assert numpy_names  # the arrays are there, under names numpy 1.x has
        assert all(m in NUMPY1_MODULES for m, _ in numpy_names), numpy_names


def test_format_only_with_a_gt_file_indexes_its_videos(tmp_path):
    gt = make_metric_gt(num_videos=2)
    prefix = str(tmp_path / 'sub')
    metric = MultiSportsTubeMetric(
        gt_file=gt, format_only=True, outfile_prefix=prefix, archive=True
    )
    metric.process({}, perfect_samples(gt))
    assert metric.compute_metrics(metric.results) == {}
    with open(prefix + '_videos.json') as f:
        assert [v['name'] for v in json.load(f)['videos']] == gt['test_videos'][0]
    assert frame_ap(gt, prefix + '_frame_detections.pkl').mean_ap == pytest.approx(100.0)
    # archive=True: the zip the 2021 server read, which its scorer reads back.
    submission = read_submission(prefix + '_submission.zip')
    figures = server2021_figures(gt, submission.frame_detections, submission.video_detections)
    assert figures['F@0.5'] == pytest.approx(100.0)


def test_linking_without_gt_equals_linking_with_it():
    gt = make_metric_gt(num_videos=3, seed=4)
    metric = MultiSportsTubeMetric(gt_file=gt, log_per_class=False)
    metric.process({}, noisy_samples(gt, seed=2))
    dets = np.concatenate([rows for _, _, rows in sorted(metric.results, key=lambda r: r[:2])])
    label_free = video_list_ground_truth(VideoList.from_ground_truth(load_ground_truth(gt)))
    assert len(label_free.tubes) == 0
    assert sum(len(v) for v in link_tubes(gt, dets).values()) > 0
    _tubes_equal(link_tubes(label_free, dets), link_tubes(gt, dets))


def test_bad_format_only_settings_and_inputs(tmp_path):
    with pytest.raises(ValueError, match='format_only=True .*outfile_prefix is not set'):
        MultiSportsTubeMetric(format_only=True)
    with pytest.raises(ValueError, match='gt_file is required'):
        MultiSportsTubeMetric()
    with pytest.raises(ValueError, match='archive=True zips the submission files'):
        MultiSportsTubeMetric(gt_file=make_metric_gt(num_videos=1), archive=True)
    gt = make_metric_gt(num_videos=2)
    prefix = str(tmp_path / 'sub')
    metric = MultiSportsTubeMetric(format_only=True, outfile_prefix=prefix)
    metric.dataset_meta = dict(classes=tuple(gt['labels']))  # not a MultiSportsDataset
    with pytest.raises(KeyError, match=r"lacks \['videos', 'nframes', 'resolution'\]"):
        metric.process({}, perfect_samples(gt)[:1])
    # A sample of a video the dataset does not list is named.
    metric.dataset_meta = dataset_meta(make_metric_gt(num_videos=1))
    with pytest.raises(KeyError, match="sport/v_1.*not in the dataset's video list"):
        metric.process({}, [s for s in perfect_samples(gt) if 'v_1' in s['video_id']][:1])
    # Rows outside the video list are refused before any file is written.
    videos = VideoList.from_ground_truth(load_ground_truth(gt))
    bad = np.array([[5, 1, 0, 0.5, 1, 1, 5, 5]], dtype=np.float64)
    with pytest.raises(ValueError, match='video index 5'):
        write_submission(prefix, bad, videos)
    assert not list(tmp_path.iterdir())
