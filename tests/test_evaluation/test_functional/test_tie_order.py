"""``tie_order='stable'``: tied scores rank in input order, the same on every machine.

The references below are brute force, written from ``docs/protocol.md`` one
detection / frame / tube at a time, and rank with Python's ``sorted`` (a
stable sort by definition, independent of numpy's build and the CPU). The
fast evaluator with ``tie_order='stable'`` must agree with them exactly, and
permuting the input changes its figures only through the documented input
order among ties.
"""

import json

import numpy as np
import pytest

from pcca_plugin.evaluation.functional import (
    TIE_ORDERS,
    check_tie_order,
    frame_ap,
    link_tubes,
    nms_tubelets,
    rank_descending,
    video_ap,
)
from pcca_plugin.testing.evaluation import make_case

#: Coarse score grids: most scores are tied with many others.
TIE_GRIDS = (0.25, 0.5)
EXCLUDED = ('aerobic kick jump', 'basketball save')  # the two excluded labels of cases.LABELS


def stable_rank(scores):
    """Best first, ties in input order (Python's sort is stable)."""
    return sorted(range(len(scores)), key=lambda i: -float(scores[i]))


def box_iou(a, b, plus_one=0.0):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + plus_one)
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + plus_one)
    inter = iw * ih
    area_a = (a[2] - a[0] + plus_one) * (a[3] - a[1] + plus_one)
    area_b = (b[2] - b[0] + plus_one) * (b[3] - b[1] + plus_one)
    return inter / (area_a + area_b - inter)


def voc_ap(tp_flags, num_gt):
    precision, recall, tp = [], [], 0
    for rank, hit in enumerate(tp_flags, 1):
        tp += hit
        precision.append(tp / rank)
        recall.append(tp / num_gt)
    recall = [0.0] + recall + [1.0]
    precision = [0.0] + precision + [0.0]
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = max(precision[i], precision[i + 1])
    return sum(
        (recall[i] - recall[i - 1]) * precision[i]
        for i in range(1, len(recall))
        if recall[i] != recall[i - 1]
    )


def brute_frame_ap(gt, dets, thr=0.5):
    """Per class, detections in stable score order, each matched to its best GT box."""
    videos = gt['test_videos'][0]
    per_class = {}
    for label, name in enumerate(gt['labels']):
        if name in EXCLUDED:
            continue
        boxes_at = {}
        for iv, video in enumerate(videos):
            for tube in gt['gttubes'][video].get(label, []):
                for row in tube:
                    boxes_at.setdefault((iv, int(row[0])), []).append([float(x) for x in row[1:5]])
        num_gt = sum(len(v) for v in boxes_at.values())
        if num_gt == 0:
            continue
        mine = [row for row in dets if int(row[2]) == label]  # input order
        used = set()
        flags = []
        for j in stable_rank([row[3] for row in mine]):
            key = (int(mine[j][0]), int(mine[j][1]))
            ious = [box_iou(g, mine[j][4:8]) for g in boxes_at.get(key, [])]
            best = int(np.argmax(ious)) if ious else -1
            hit = best >= 0 and ious[best] >= thr and (key, best) not in used
            if hit:
                used.add((key, best))
            flags.append(hit)
        per_class[name] = 100 * voc_ap(flags, num_gt)
    return per_class


def brute_nms(rows, thr=0.6, top_k=10):
    """One-pass tubelet suppression of ``[[x1, y1, x2, y2, score], ...]``, stable ranking."""
    rows = [list(map(float, r)) for r in rows]
    weight = [1.0] * len(rows)
    remaining = stable_rank([r[4] for r in rows])
    while remaining:
        best, rest = remaining[0], remaining[1:]
        remaining = []
        for j in rest:
            iou = box_iou(rows[best], rows[j], plus_one=1.0)
            if iou > thr:
                weight[j] = 1 - iou
            else:
                remaining.append(j)
    for i in range(len(rows)):
        rows[i][4] *= weight[i]
    return [rows[i] for i in stable_rank([r[4] for r in rows])][:top_k]


def brute_link(gt, dets, len_thr=15, score_thr=0.005):
    """The protocol's linker per video, label and frame, with stable ranking."""
    out = {label: [] for label in range(len(gt['labels']))}
    groups = {}  # (video, frame, label) -> rows in input order
    for row in dets:
        groups.setdefault((int(row[0]), int(row[1]), int(row[2])), []).append(row)
    for iv, video in enumerate(gt['test_videos'][0]):
        for label in out:
            finished, live = [], []
            for frame in range(1, gt['nframes'][video] + 1):
                here = groups.get((iv, frame, label), [])
                boxes = brute_nms([list(r[4:8]) + [r[3]] for r in here])
                means = [np.mean(np.array([box[4] for _, box in tube])) for tube in live]
                live = [live[i] for i in stable_rank(means)]
                ended = []
                for i, tube in enumerate(live):
                    last = tube[-1][1]
                    ok = [k for k, b in enumerate(boxes) if box_iou(last, b) >= 0.5]
                    if ok:
                        pick = max(ok, key=lambda k: (boxes[k][4], -k))  # first of the best
                        tube.append((frame, boxes.pop(pick)))
                    else:
                        ended.append(i)
                for i in reversed(ended):
                    finished.append(live.pop(i))
                live.extend([[(frame, box)] for box in boxes])
            for tube in finished + live:
                score = np.mean(np.array([box[4] for _, box in tube]))
                length = tube[-1][0] - tube[0][0] + 1
                if score >= score_thr and length >= len_thr:
                    rows = np.array([[f] + box for f, box in tube], dtype=np.float32)
                    out[label].append((video, score, rows))
    return out


def brute_video_ap(gt, tubes, thr):
    from pcca_plugin.testing.evaluation_reference import tube_iou

    videos = gt['test_videos'][0]
    per_class = {}
    for label, name in enumerate(gt['labels']):
        if name in EXCLUDED:
            continue
        num_gt = sum(len(gt['gttubes'][v].get(label, [])) for v in videos)
        if num_gt == 0:
            continue
        dets = tubes.get(label, [])
        used = set()
        flags = []
        for j in stable_rank([d[1] for d in dets]):
            video, _, tube = dets[j]
            ious = [tube_iou(g, tube) for g in gt['gttubes'][video].get(label, [])]
            best = int(np.argmax(ious)) if ious else -1
            hit = best >= 0 and ious[best] >= thr and (video, best) not in used
            if hit:
                used.add((video, best))
            flags.append(hit)
        per_class[name] = 100 * voc_ap(flags, num_gt)
    return per_class


def same_tubes(fast, slow):
    assert fast.keys() == slow.keys()
    for label in fast:
        assert len(fast[label]) == len(slow[label]), f'label {label}'
        for (v1, s1, t1), (v2, s2, t2) in zip(fast[label], slow[label]):
            assert v1 == v2 and s1 == s2
            np.testing.assert_array_equal(t1, t2)


def tied_case(seed, grid):
    gt, dets = make_case(seed, num_videos=3, tie_grid=grid)
    _, counts = np.unique(dets[:, 3], return_counts=True)
    assert counts.max() > 20  # the case is really full of ties
    return gt, dets


@pytest.mark.parametrize('seed', [0, 1])
@pytest.mark.parametrize('grid', TIE_GRIDS)
def test_stable_equals_brute_force(seed, grid):
    gt, dets = tied_case(seed, grid)
    fast = frame_ap(gt, dets, 0.5, tie_order='stable')
    assert fast.per_class == pytest.approx(brute_frame_ap(gt, dets), abs=1e-9)
    tubes = link_tubes(gt, dets, len_thr=3, tie_order='stable')
    same_tubes(tubes, brute_link(gt, dets, len_thr=3))
    for thr in (0.2, 0.5):
        result = video_ap(gt, tubes, thr, tie_order='stable')
        assert result.per_class == pytest.approx(brute_video_ap(gt, tubes, thr), abs=1e-9)


@pytest.mark.parametrize('seed', [2, 3])
def test_permuted_input_follows_the_documented_order(seed):
    """Any permutation: the figures are the brute force's on the permuted input. A
    permutation that keeps the order within every group of tied detections changes nothing."""
    gt, dets = tied_case(seed, TIE_GRIDS[0])
    rng = np.random.default_rng(seed)
    shuffled = dets[rng.permutation(len(dets))]
    fast = frame_ap(gt, shuffled, 0.5, tie_order='stable')
    assert fast.per_class == pytest.approx(brute_frame_ap(gt, shuffled), abs=1e-9)
    same_tubes(
        link_tubes(gt, shuffled, len_thr=3, tie_order='stable'),
        brute_link(gt, shuffled, len_thr=3),
    )
    # Keep the input order inside each (label, score) group and inside each (video,
    # frame, label) group; interleave everything else differently.
    order = np.lexsort((np.arange(len(dets)), dets[:, 3], dets[:, 1], dets[:, 0], dets[:, 2]))
    regrouped = dets[order]
    assert not np.array_equal(regrouped, dets)
    before = frame_ap(gt, dets, 0.5, tie_order='stable')
    after = frame_ap(gt, regrouped, 0.5, tie_order='stable')
    assert after.per_class == before.per_class and after.mean_ap == before.mean_ap
    same_tubes(
        link_tubes(gt, regrouped, len_thr=3, tie_order='stable'),
        link_tubes(gt, dets, len_thr=3, tie_order='stable'),
    )


def test_stable_equals_official_without_ties():
    gt, dets = make_case(4, num_videos=3, tie_grid=0.0)
    assert np.unique(dets[:, 3]).size == len(dets)
    official = frame_ap(gt, dets, 0.5)
    stable = frame_ap(gt, dets, 0.5, tie_order='stable')
    assert official.per_class == stable.per_class


def test_rank_helpers_and_nms():
    scores = np.array([0.5, 0.9, 0.5, 0.1, 0.9, 0.5])
    assert rank_descending(scores, 'stable').tolist() == stable_rank(scores)
    assert sorted(rank_descending(scores, 'official').tolist()) == list(range(6))
    boxes = np.array([[0, 0, 10, 10, s] for s in scores], dtype=np.float64)
    boxes[:, 0] += 30 * np.arange(6)  # disjoint: suppression only re-ranks
    boxes[:, 2] += 30 * np.arange(6)
    kept = nms_tubelets(boxes, top_k=4, tie_order='stable')
    np.testing.assert_array_equal(kept, np.array(brute_nms(boxes, top_k=4)))
    assert TIE_ORDERS == ('official', 'stable')
    with pytest.raises(ValueError, match="tie_order must be one of .*'random'"):
        check_tie_order('random')
    gt, dets = make_case(0, num_videos=2)
    with pytest.raises(ValueError, match='tie_order'):
        frame_ap(gt, dets, tie_order='sorted')


def test_cli_tie_order(tmp_path):
    from pcca_plugin.testing import run_tool
    from pcca_plugin.utils.pickle_io import dump_pickle

    gt, dets = tied_case(5, TIE_GRIDS[1])
    dump_pickle(gt, tmp_path / 'gt.pkl')
    dump_pickle(dets, tmp_path / 'dets.pkl')
    out = tmp_path / 'frame.json'
    run = run_tool(
        'eval_multisports.py',
        *['frameAP', str(tmp_path / 'gt.pkl'), str(tmp_path / 'dets.pkl')],
        *['--tie-order', 'stable', '--json', str(out), '--no-progress'],
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(out.read_text())
    assert report['tie_order'] == 'stable'
    expected = brute_frame_ap(gt, dets)
    assert report['frameAP']['per_class'] == pytest.approx(expected, abs=1e-9)


def test_metric_tie_order_stable(tmp_path):
    """The metric ranks ties in its documented input order: samples by (video, frame), then
    the boxes of a sample; so the order in which samples arrive changes nothing."""
    from pcca_plugin.evaluation.metrics import MultiSportsTubeMetric
    from pcca_plugin.utils.pickle_io import load_pickle

    gt, dets = tied_case(6, TIE_GRIDS[0])
    height, width = 240, 320  # cases.make_case's resolution
    num_labels = len(gt['labels'])
    samples = []
    for video, frame in sorted({(int(r[0]), int(r[1])) for r in dets}):
        rows = dets[(dets[:, 0] == video) & (dets[:, 1] == frame)]
        scores = np.zeros((len(rows), num_labels))
        scores[np.arange(len(rows)), rows[:, 2].astype(int)] = rows[:, 3]
        samples.append(
            dict(
                video_id=gt['test_videos'][0][video],
                timestamp=frame,
                pred_instances=dict(
                    bboxes=rows[:, 4:8] / np.array([width, height, width, height]), scores=scores
                ),
            )
        )
    figures = []
    for order in (np.arange(len(samples)), np.random.default_rng(0).permutation(len(samples))):
        dumped = str(tmp_path / f'dets_{len(figures)}.pkl')
        metric = MultiSportsTubeMetric(
            gt_file=gt,
            score_thr=1e-9,  # drop the zero scores of the other classes
            tie_order='stable',
            log_per_class=False,
            dump_frame_detections=dumped,
        )
        metric.process(None, [samples[i] for i in order])
        result = metric.compute_metrics(metric.results)
        rows = load_pickle(dumped)
        brute = brute_frame_ap(gt, rows)
        assert result['frame_mAP@0.5'] == pytest.approx(np.mean(list(brute.values())), abs=1e-9)
        figures.append(result)
    assert figures[0] == figures[1]
    with pytest.raises(ValueError, match='tie_order'):
        MultiSportsTubeMetric(gt_file=gt, tie_order='random')
