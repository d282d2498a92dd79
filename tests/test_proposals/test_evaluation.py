"""AP@0.5 / AR@100 of person proposals: hand-computed cases, a slow reference, the CLI.

The box IoU and the VOC AP it uses are the evaluation's own (hand values in
``tests/test_evaluation/test_functional/test_geometry_ap.py``).
"""

import json
import os.path as osp

import numpy as np
import pytest

from pcca_plugin.evaluation.functional import voc_ap
from pcca_plugin.proposals.evaluation import (
    evaluate_proposal_file_contents,
    evaluate_proposals,
    gt_person_boxes,
)
from pcca_plugin.testing import run_tool
from pcca_plugin.testing.evaluation import gt_boxes_as_proposals
from pcca_plugin.utils.multisports_format import frame_key
from pcca_plugin.utils.pickle_io import dump_pickle


def _gt(tubes_per_video, resolution=(100, 200)):
    """A MultiSports GT dict from {video: {label: [tube (L, 5)]}}; all videos in test split."""
    videos = list(tubes_per_video)
    return dict(
        labels=['a', 'b'],
        train_videos=[[]],
        test_videos=[videos],
        nframes=dict.fromkeys(videos, 10),
        resolution=dict.fromkeys(videos, resolution),
        gttubes={
            v: {
                label: [np.asarray(t, dtype=np.float32) for t in tubes]
                for label, tubes in labels.items()
            }
            for v, labels in tubes_per_video.items()
        },
    )


def test_small_case_by_hand():
    # Frame 1: GT boxes A, B. Frame 2: GT box C. Boxes in pixels of a 200x100 (w x h) video.
    gt = _gt({'s/v1': {0: [[[1, 0, 0, 20, 40], [2, 100, 50, 120, 90]], [[1, 50, 0, 70, 40]]]}})
    boxes = gt_person_boxes(gt, ['s/v1'])
    scale = np.array([200, 100, 200, 100, 1], dtype=np.float32)
    proposals = {
        # 0.9 hits A (TP); 0.8 duplicates A (FP); 0.3 misses everything (FP).
        frame_key('s/v1', 1): np.array(
            [[0, 0, 20, 40, 0.9], [1, 0, 21, 40, 0.8], [150, 0, 170, 40, 0.3]]
        )
        / scale,
        # 0.7 hits C (TP).
        frame_key('s/v1', 2): np.array([[100, 50, 120, 90, 0.7]]) / scale,
        # A frame without GT: ignored.
        frame_key('s/v1', 5): np.array([[0, 0, 10, 10, 0.99]]) / scale,
    }
    result = evaluate_proposals(proposals, boxes)['overall']
    # Ranked: TP(.9) FP(.8) TP(.7) FP(.3), 3 GT -> recall 1/3 1/3 2/3 2/3,
    # precision 1 1/2 2/3 1/2 -> AP = 1/3 * 1 + 1/3 * 2/3.
    assert result['AP'] == pytest.approx(100 * (1 / 3 + 2 / 9))
    # A and C are covered, B is not.
    assert result['AR'] == pytest.approx(100 * 2 / 3)
    assert result['num_gt_boxes'] == 3
    assert result['num_proposals'] == 4
    assert result['num_true_positives'] == 2
    assert result['frames_without_proposals'] == 0
    # AR@1 keeps only the 0.9 box of frame 1 (A) and the 0.7 box of frame 2 (C).
    ar1 = evaluate_proposals(proposals, boxes, max_per_frame=1)['overall']['AR']
    assert ar1 == pytest.approx(100 * 2 / 3)
    # A stricter IoU: the duplicate's IoU with A is 20/21, still a match; nothing changes at .9.
    strict = evaluate_proposals(proposals, boxes, iou_thr=0.9)['overall']
    assert strict['num_true_positives'] == 2


def test_duplicate_gt_boxes_count_once_and_missing_frames_have_no_proposals():
    same = [[3, 10, 10, 30, 50]]
    gt = _gt({'s/v1': {0: [same], 1: [same]}, 's/v2': {0: [[[4, 0, 0, 10, 10]]]}})
    boxes = gt_person_boxes(gt, ['s/v1', 's/v2'])
    assert boxes[frame_key('s/v1', 3)].shape == (1, 4)
    np.testing.assert_allclose(
        boxes[frame_key('s/v1', 3)][0], [10 / 200, 10 / 100, 30 / 200, 50 / 100]
    )
    proposals = {frame_key('s/v1', 3): np.array([[0.05, 0.1, 0.15, 0.5, 0.6]], np.float32)}
    result = evaluate_proposals(proposals, boxes)
    assert result['overall']['frames_without_proposals'] == 1
    assert result['per_video']['s/v1']['AP'] == pytest.approx(100.0)
    assert result['per_video']['s/v2']['AP'] == 0.0
    assert result['per_video']['s/v2']['AR'] == 0.0
    assert result['overall']['AR'] == pytest.approx(50.0)


def _reference_ap_ar(proposals, boxes, iou_thr, max_per_frame):
    """Slow, obviously-correct loops over detections and boxes (float64)."""

    def iou(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else 0.0

    detections = []
    for key in boxes:
        for row in proposals.get(key, []):
            detections.append((key, [float(v) for v in row]))
    scores = np.array([d[1][4] for d in detections])
    order = np.argsort(-scores)
    matched = set()
    tp = []
    for index in order:
        key, row = detections[index]
        best, best_iou = None, -1.0
        for g, gbox in enumerate(boxes[key]):
            value = iou(row[:4], gbox)
            if value > best_iou:
                best, best_iou = g, value
        hit = best is not None and best_iou >= iou_thr and (key, best) not in matched
        if hit:
            matched.add((key, best))
        tp.append(hit)
    num_gt = sum(len(b) for b in boxes.values())
    tp_cum = np.cumsum(tp)
    recall = tp_cum / num_gt
    precision = tp_cum / np.arange(1, len(tp) + 1)
    recalled = 0
    for key, gboxes in boxes.items():
        rows = sorted(proposals.get(key, []), key=lambda r: -r[4])[:max_per_frame]
        for gbox in gboxes:
            recalled += any(iou(r[:4], gbox) >= iou_thr for r in rows)
    return 100 * voc_ap(precision, recall), 100 * recalled / num_gt


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_matches_slow_reference_on_random_data(seed):
    rng = np.random.default_rng(seed)
    boxes, proposals = {}, {}
    for frame in range(1, 13):
        key = frame_key('s/v', frame)
        xy = rng.uniform(0, 0.7, (rng.integers(1, 4), 2))
        boxes[key] = np.concatenate([xy, xy + rng.uniform(0.05, 0.3, xy.shape)], 1)
        if frame % 5 == 0:
            continue  # a frame with no proposals
        near = np.repeat(boxes[key], 3, axis=0) + rng.normal(0, 0.04, (3 * len(boxes[key]), 4))
        rand_xy = rng.uniform(0, 0.8, (2, 2))
        far = np.concatenate([rand_xy, rand_xy + 0.1], 1)
        rows = np.concatenate([near, far])
        # Scores on a coarse grid so that ties occur.
        score = rng.integers(1, 10, len(rows))[:, None] / 10
        proposals[key] = np.concatenate([rows, score], 1).astype(np.float32)
    for iou_thr, max_per_frame in [(0.5, 100), (0.3, 2), (0.7, 1)]:
        ours = evaluate_proposals(proposals, boxes, iou_thr=iou_thr, max_per_frame=max_per_frame)[
            'overall'
        ]
        ref_ap, ref_ar = _reference_ap_ar(proposals, boxes, iou_thr, max_per_frame)
        assert ours['AP'] == pytest.approx(ref_ap, abs=1e-9)
        assert ours['AR'] == pytest.approx(ref_ar, abs=1e-9)


def test_bad_inputs_name_the_problem():
    gt = _gt({'s/v1': {0: [[[1, 0, 0, 20, 40]]]}})
    boxes = gt_person_boxes(gt, ['s/v1'])
    with pytest.raises(ValueError, match=r"props.pkl: proposals\['s/v1,0001'\] has shape \(1, 4\)"):
        evaluate_proposals({frame_key('s/v1', 1): np.zeros((1, 4))}, boxes, source='props.pkl')
    pixels = np.array([[0, 0, 20, 40, 0.9]], np.float32)
    with pytest.raises(
        ValueError, match=r'props.pkl: .* has a coordinate of 40; .* look like pixels'
    ):
        evaluate_proposals({frame_key('s/v1', 1): pixels}, boxes, source='props.pkl')
    with pytest.raises(KeyError, match='gt.pkl: video .s/missing. has no entry'):
        gt_person_boxes(gt, ['s/missing'], source='gt.pkl')
    with pytest.raises(TypeError, match='props.pkl: a proposal file holds a dict'):
        evaluate_proposal_file_contents([1, 2], gt, proposal_source='props.pkl')
    with pytest.raises(ValueError, match='iou_thr'):
        evaluate_proposals({}, boxes, iou_thr=0.0)
    broken = _gt({'s/v1': {0: [[1, 0, 0, 20]]}})
    with pytest.raises(ValueError, match=r'gttubes\[.s/v1.\]\[0\]\[0\] has shape'):
        gt_person_boxes(broken, ['s/v1'])


def test_cli_gives_100_for_proposals_equal_to_gt(toy_data, tmp_path):
    """eval_proposals.py on the toy GT boxes themselves: AP 100 / AR 100, overall and per video."""
    gt = toy_data['gt']
    proposals = gt_boxes_as_proposals(gt, toy_data['val_videos'], dtype=np.float32)
    props_file = str(tmp_path / 'gt_equal.pkl')
    dump_pickle(proposals, props_file)
    json_file = str(tmp_path / 'eval.json')
    run = run_tool(
        'det/eval_proposals.py',
        *[props_file, toy_data['gt_file'], '--split', 'val', '--json', json_file, '--per-video'],
    )
    assert run.returncode == 0, run.stderr
    assert osp.isfile(json_file)
    with open(json_file) as f:
        results = json.load(f)
    overall = results['overall']
    assert overall['AP'] == pytest.approx(100.0)
    assert overall['AR'] == pytest.approx(100.0)
    assert overall['num_gt_boxes'] > 0
    assert overall['frames_without_proposals'] == 0
    assert set(results['per_video']) == set(toy_data['val_videos'])
    for stats in results['per_video'].values():
        assert stats['AP'] == pytest.approx(100.0)
        assert stats['AR'] == pytest.approx(100.0)
    # Moving every box half a frame width to the right loses the match of (at least) some.
    shifted = {
        key: np.concatenate([rows[:, :4] + [0.5, 0, 0.5, 0], rows[:, 4:]], 1)
        for key, rows in proposals.items()
    }
    moved = evaluate_proposal_file_contents(shifted, gt, split='val')['overall']
    assert moved['AR'] < 100.0
