"""MultiSportsTubeMetric: sanity (perfect = 100, shuffled = chance), options, dumps, ranks."""

import numpy as np
import pytest
import torch
from mmaction.registry import METRICS
from mmengine.registry import DefaultScope

from pcca_plugin.evaluation.functional import frame_ap, video_ap
from pcca_plugin.evaluation.metrics import MultiSportsTubeMetric
from pcca_plugin.testing.evaluation import (
    METRIC_KEYS,
    METRIC_NUM_LABELS,
    evaluate_metric,
    make_metric_gt,
    perfect_samples,
)
from pcca_plugin.utils.pickle_io import load_pickle


def test_registered_and_perfect_predictions_score_100(tmp_path):
    gt = make_metric_gt()
    with DefaultScope.overwrite_default_scope('mmaction'):  # whatever scope other tests left
        metric = METRICS.build(
            dict(
                type='MultiSportsTubeMetric',
                gt_file=gt,
                dump_frame_detections=str(tmp_path / 'frame_detections.pkl'),
                dump_video_detections=str(tmp_path / 'video_detections.pkl'),
            )
        )
    assert isinstance(metric, MultiSportsTubeMetric)
    result = evaluate_metric(metric, perfect_samples(gt))
    assert set(METRIC_KEYS) <= set(result)
    for key in METRIC_KEYS:
        assert result[key] == pytest.approx(100.0), key
    # The dumps are the official formats and give the same figures when evaluated from file.
    frame_dets = load_pickle(str(tmp_path / 'frame_detections.pkl'))
    assert frame_dets.shape[1] == 8
    assert frame_ap(gt, str(tmp_path / 'frame_detections.pkl')).mean_ap == result['frame_mAP@0.5']
    video_path = str(tmp_path / 'video_detections.pkl')
    assert video_ap(gt, video_path, 0.5).mean_ap == result['video_mAP@0.5']
    assert b'numpy._core' not in open(video_path, 'rb').read()


def test_shuffled_labels_score_about_chance():
    gt = make_metric_gt(num_videos=10)
    rng = np.random.default_rng(0)
    samples = perfect_samples(gt)
    for sample in samples:  # random scores: the ranking carries no class information
        n = sample['pred_instances']['bboxes'].shape[0]
        sample['pred_instances']['scores'] = torch.tensor(rng.random((n, METRIC_NUM_LABELS)))
    result = evaluate_metric(MultiSportsTubeMetric(gt, log_per_class=False), samples)
    # Every box is scored for every class; a class's boxes are about 1/METRIC_NUM_LABELS of them.
    chance = 100.0 / METRIC_NUM_LABELS
    assert 0.5 * chance < result['frame_mAP@0.5'] < 1.8 * chance
    perfect = evaluate_metric(MultiSportsTubeMetric(gt, log_per_class=False), perfect_samples(gt))
    assert result['frame_mAP@0.5'] < perfect['frame_mAP@0.5'] - 50
    permutation = np.roll(np.arange(METRIC_NUM_LABELS), 1)
    wrong = evaluate_metric(
        MultiSportsTubeMetric(gt, score_thr=0.5, log_per_class=False),
        perfect_samples(gt, permutation),
    )
    assert all(wrong[key] == 0.0 for key in METRIC_KEYS)  # every label wrong: nothing is found


def test_background_column_needs_class_indices_and_top_k_and_detector_score():
    gt = make_metric_gt()
    samples = perfect_samples(gt, background=True)
    with pytest.raises(ValueError, match=r'class_indices=\[-1\] \+ list\(range\(5\)\)'):
        evaluate_metric(MultiSportsTubeMetric(gt), samples)
    metric = MultiSportsTubeMetric(gt, class_indices=[-1] + list(range(METRIC_NUM_LABELS)), top_k=1)
    result = evaluate_metric(metric, perfect_samples(gt, background=True))
    assert result['frame_mAP@0.5'] == pytest.approx(100.0)
    assert all(
        len(rows) == sample_boxes
        for (_, _, rows), sample_boxes in zip(
            metric.results, [s['pred_instances']['bboxes'].shape[0] for s in samples]
        )
    )
    # Detector scores multiply the class scores (and are required when asked for).
    metric = MultiSportsTubeMetric(gt, multiply_detector_score=True, score_thr=0.3)
    samples = perfect_samples(gt)
    with pytest.raises(KeyError, match='proposal_scores'):
        metric.process({}, samples[:1])
    for sample in samples:
        sample['proposal_scores'] = np.full(sample['pred_instances']['bboxes'].shape[0], 0.5)
    metric.process({}, samples)
    scores = np.concatenate([rows[:, 3] for _, _, rows in metric.results])
    assert np.all(scores == 0.5)  # one-hot 1.0 x 0.5 kept; 0.0 x 0.5 below score_thr


def test_rank_collection_order_does_not_change_results():
    gt = make_metric_gt()
    rng = np.random.default_rng(3)
    samples = perfect_samples(gt)
    for sample in samples:
        n = sample['pred_instances']['bboxes'].shape[0]
        sample['pred_instances']['scores'] = torch.tensor(
            np.round(rng.random((n, METRIC_NUM_LABELS)), 1)
        )
    single = MultiSportsTubeMetric(gt, log_per_class=False)
    expected = evaluate_metric(single, samples)
    ranks = [MultiSportsTubeMetric(gt, log_per_class=False) for _ in range(2)]
    for i, sample in enumerate(samples):
        ranks[i % 2].process({}, [sample])
    # mmengine's collect_results concatenates rank results (ordered or interleaved).
    gathered = ranks[1].results + ranks[0].results
    assert all(isinstance(rows, np.ndarray) and rows.dtype == np.float64 for _, _, rows in gathered)
    assert ranks[0].compute_metrics(gathered) == expected


def test_unknown_video_is_a_clear_error():
    gt = make_metric_gt()
    sample = perfect_samples(gt)[0]
    sample['video_id'] = 'sport/unknown'
    with pytest.raises(KeyError, match="video_id='sport/unknown'.*not in test_videos"):
        MultiSportsTubeMetric(gt).process({}, [sample])
