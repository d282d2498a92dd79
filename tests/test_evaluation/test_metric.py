"""MultiSportsTubeMetric: sanity (perfect = 100, shuffled = chance), options, dumps, ranks."""

import numpy as np
import pytest
import torch
from mmaction.registry import METRICS
from mmengine.registry import DefaultScope

from pcca_plugin.evaluation import MultiSportsTubeMetric
from pcca_plugin.evaluation.functional import frame_ap, video_ap
from pcca_plugin.utils.pickle_io import load_pickle

NUM_LABELS = 5
HEIGHT, WIDTH = 100, 200
KEYS = ('frame_mAP@0.5', 'video_mAP@0.2', 'video_mAP@0.5', 'video_mAP@0.1:0.9')


def make_gt(num_videos=6, nframes=40, seed=0):
    """Videos with two persons far apart, each doing one action for >= 15 frames."""
    rng = np.random.default_rng(seed)
    videos = [f'sport/v_{i}' for i in range(num_videos)]
    gttubes = {}
    for i, v in enumerate(videos):
        tubes = {}
        for person in range(2):
            label = int((2 * i + person) % NUM_LABELS)
            first = int(rng.integers(1, 10))
            last = int(rng.integers(first + 20, nframes + 1))
            frames = np.arange(first, last + 1)
            x = 10 + 100 * person + np.linspace(0, 5, frames.size)
            boxes = np.column_stack([x, np.full_like(x, 20), x + 40, np.full_like(x, 80)])
            tubes.setdefault(label, []).append(np.column_stack([frames, boxes]).astype(np.float32))
        gttubes[v] = tubes
    return dict(
        labels=[f'action {c}' for c in range(NUM_LABELS)],
        train_videos=[[]],
        test_videos=[videos],
        nframes=dict.fromkeys(videos, nframes),
        resolution=dict.fromkeys(videos, (HEIGHT, WIDTH)),
        gttubes=gttubes,
    )


def perfect_samples(gt, shuffle_labels=None, background=False):
    """One data-sample dict per annotated frame with normalised boxes and one-hot scores."""
    per_frame = {}
    for v in gt['test_videos'][0]:
        for label, tubes in gt['gttubes'][v].items():
            for tube in tubes:
                for row in tube:
                    per_frame.setdefault((v, int(row[0])), []).append((label, row[1:5]))
    samples = []
    for (video, frame), items in sorted(per_frame.items()):
        boxes = np.array([b for _, b in items]) / np.array([WIDTH, HEIGHT, WIDTH, HEIGHT])
        scores = np.zeros((len(items), NUM_LABELS))
        for i, (label, _) in enumerate(items):
            scores[i, shuffle_labels[label] if shuffle_labels is not None else label] = 1.0
        if background:
            scores = np.concatenate([np.full((len(items), 1), 0.9), scores], axis=1)
        samples.append(
            dict(
                video_id=video + '.mp4',
                timestamp=frame,
                pred_instances=dict(
                    bboxes=torch.tensor(boxes, dtype=torch.float32),
                    scores=torch.tensor(scores, dtype=torch.float32),
                ),
            )
        )
    return samples


def evaluate(metric, samples):
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)


def test_registered_and_perfect_predictions_score_100(tmp_path):
    gt = make_gt()
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
    result = evaluate(metric, perfect_samples(gt))
    assert set(KEYS) <= set(result)
    for key in KEYS:
        assert result[key] == pytest.approx(100.0), key
    # The dumps are the official formats and give the same figures when evaluated from file.
    frame_dets = load_pickle(str(tmp_path / 'frame_detections.pkl'))
    assert frame_dets.shape[1] == 8
    assert frame_ap(gt, str(tmp_path / 'frame_detections.pkl')).mean_ap == result['frame_mAP@0.5']
    video_path = str(tmp_path / 'video_detections.pkl')
    assert video_ap(gt, video_path, 0.5).mean_ap == result['video_mAP@0.5']
    assert b'numpy._core' not in open(video_path, 'rb').read()


def test_shuffled_labels_score_about_chance():
    gt = make_gt(num_videos=10)
    rng = np.random.default_rng(0)
    samples = perfect_samples(gt)
    for sample in samples:  # random scores: the ranking carries no class information
        n = sample['pred_instances']['bboxes'].shape[0]
        sample['pred_instances']['scores'] = torch.tensor(rng.random((n, NUM_LABELS)))
    result = evaluate(MultiSportsTubeMetric(gt, log_per_class=False), samples)
    # Every box is scored for every class; a class's boxes are about 1/NUM_LABELS of them.
    chance = 100.0 / NUM_LABELS
    assert 0.5 * chance < result['frame_mAP@0.5'] < 1.8 * chance
    perfect = evaluate(MultiSportsTubeMetric(gt, log_per_class=False), perfect_samples(gt))
    assert result['frame_mAP@0.5'] < perfect['frame_mAP@0.5'] - 50
    permutation = np.roll(np.arange(NUM_LABELS), 1)
    wrong = evaluate(
        MultiSportsTubeMetric(gt, score_thr=0.5, log_per_class=False),
        perfect_samples(gt, permutation),
    )
    assert all(wrong[key] == 0.0 for key in KEYS)  # every label wrong: nothing is found


def test_background_column_needs_class_indices_and_top_k_and_detector_score():
    gt = make_gt()
    samples = perfect_samples(gt, background=True)
    with pytest.raises(ValueError, match=r'class_indices=\[-1\] \+ list\(range\(5\)\)'):
        evaluate(MultiSportsTubeMetric(gt), samples)
    metric = MultiSportsTubeMetric(gt, class_indices=[-1] + list(range(NUM_LABELS)), top_k=1)
    result = evaluate(metric, perfect_samples(gt, background=True))
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
    gt = make_gt()
    rng = np.random.default_rng(3)
    samples = perfect_samples(gt)
    for sample in samples:
        n = sample['pred_instances']['bboxes'].shape[0]
        sample['pred_instances']['scores'] = torch.tensor(np.round(rng.random((n, NUM_LABELS)), 1))
    single = MultiSportsTubeMetric(gt, log_per_class=False)
    expected = evaluate(single, samples)
    ranks = [MultiSportsTubeMetric(gt, log_per_class=False) for _ in range(2)]
    for i, sample in enumerate(samples):
        ranks[i % 2].process({}, [sample])
    # mmengine's collect_results concatenates rank results (ordered or interleaved).
    gathered = ranks[1].results + ranks[0].results
    assert all(isinstance(rows, np.ndarray) and rows.dtype == np.float64 for _, _, rows in gathered)
    assert ranks[0].compute_metrics(gathered) == expected


def test_unknown_video_is_a_clear_error():
    gt = make_gt()
    sample = perfect_samples(gt)[0]
    sample['video_id'] = 'sport/unknown'
    with pytest.raises(KeyError, match="video_id='sport/unknown'.*not in test_videos"):
        MultiSportsTubeMetric(gt).process({}, [sample])
