"""Slow, obviously-correct references of the MultiSports protocol (for the tests).

Written straight from ``docs/protocol.md``: one detection,
one frame, one tube at a time, with plain Python loops and the same numpy calls
the protocol names (``np.argsort(-scores)``, ``np.argmax``, ``np.mean``), so
ties and dtypes behave as in the official tool. The fast functions in
``pcca_plugin.evaluation.functional`` must agree with these.
"""

import math

import numpy as np

from pcca_plugin.utils.multisports_format import EXCLUDED_CLASS_NAMES

#: The classes the challenge does not evaluate.
EXCLUDED = EXCLUDED_CLASS_NAMES


def iou_many_to_one(boxes, box):
    """IoU of each row of ``boxes`` (n, 4) with ``box`` (4,), no +1."""
    boxes = boxes[None, :] if boxes.ndim == 1 else boxes
    box = box[None, :] if box.ndim == 1 else box
    iw = np.maximum(0, np.minimum(boxes[:, 2], box[:, 2]) - np.maximum(boxes[:, 0], box[:, 0]))
    ih = np.maximum(0, np.minimum(boxes[:, 3], box[:, 3]) - np.maximum(boxes[:, 1], box[:, 1]))
    inter = iw * ih
    area_many = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    area_one = (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])
    return inter / (area_many + area_one - inter)


def tube_iou(a, b, part='st'):
    """ST-IoU of GT tube ``a`` and detected tube ``b`` (protocol "Geometry")."""
    first = max(a[0, 0], b[0, 0])
    last = min(a[-1, 0], b[-1, 0])
    if last < first:
        return 0.0
    t_inter = last - first
    t_union = max(a[-1, 0], b[-1, 0]) - min(a[0, 0], b[0, 0])
    if part == 'temporal':
        return t_inter / t_union
    a_part = a[int(first - a[0, 0]) : int(last - a[0, 0]) + 1, 1:5]
    b_part = b[int(first - b[0, 0]) : int(last - b[0, 0]) + 1, 1:5]
    iw = np.maximum(
        0, np.minimum(a_part[:, 2], b_part[:, 2]) - np.maximum(a_part[:, 0], b_part[:, 0])
    )
    ih = np.maximum(
        0, np.minimum(a_part[:, 3], b_part[:, 3]) - np.maximum(a_part[:, 1], b_part[:, 1])
    )
    inter = iw * ih
    area_a = (a_part[:, 2] - a_part[:, 0]) * (a_part[:, 3] - a_part[:, 1])
    area_b = (b_part[:, 2] - b_part[:, 0]) * (b_part[:, 3] - b_part[:, 1])
    spatial = np.mean(inter / (area_a + area_b - inter))
    if part == 'spatial':
        return spatial * 1.0
    return spatial * (t_inter / t_union)


def all_point_ap(pr):
    """All-point VOC AP of an (n, 2) [precision, recall] table."""
    recall = [0.0] + [float(r) for r in pr[:, 1]] + [1.0]
    precision = [0.0] + [float(p) for p in pr[:, 0]] + [0.0]
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = max(precision[i], precision[i + 1])
    recall, precision = np.array(recall), np.array(precision)
    changed = [i for i in range(1, len(recall)) if recall[i] != recall[i - 1]]
    changed = np.array(changed, dtype=np.int64)
    return np.sum((recall[changed] - recall[changed - 1]) * precision[changed])


def frame_ap(gt, dets, thr):
    """Returns (mAP, {label_name: AP}) in percent."""
    videos = gt['test_videos'][0]
    per_class = {}
    for label, name in enumerate(gt['labels']):
        if name in EXCLUDED:
            continue
        class_dets = dets[dets[:, 2] == label, :]
        boxes_at = {}
        for iv, video in enumerate(videos):
            for tube in gt['gttubes'][video].get(label, []):
                for row in tube:
                    boxes_at.setdefault((iv, int(row[0])), []).append(row[1:5].tolist())
        boxes_at = {k: np.array(v) for k, v in boxes_at.items()}
        num_gt = sum(len(v) for v in boxes_at.values())
        if num_gt == 0:
            continue
        used = {k: np.zeros(len(v), dtype=bool) for k, v in boxes_at.items()}
        tp = fp = 0
        table = np.zeros((len(class_dets), 2))
        for rank, j in enumerate(np.argsort(-class_dets[:, 3])):
            key = (int(class_dets[j, 0]), int(class_dets[j, 1]))
            hit = False
            if key in boxes_at:
                ious = iou_many_to_one(boxes_at[key], class_dets[j, 4:8])
                best = np.argmax(ious)
                if ious[best] >= thr and not used[key][best]:
                    used[key][best] = True
                    hit = True
            tp, fp = tp + hit, fp + (not hit)
            table[rank] = [tp / (tp + fp), tp / num_gt]
        per_class[name] = 100 * all_point_ap(table)
    values = list(per_class.values())
    return (float(np.mean(values)) if values else 0.0), per_class


def _class_matches(gt, vdets, label, thr):
    """Yield (is_tp, reached, det) in rank order for one label (protocol video-mAP)."""
    videos = gt['test_videos'][0]
    tubes_of = {v: gt['gttubes'][v][label] for v in videos if len(gt['gttubes'][v].get(label, []))}
    dets = vdets.get(label, [])
    used = {v: np.zeros(len(t), dtype=bool) for v, t in tubes_of.items()}
    for j in np.argsort(-np.array([d[1] for d in dets])):
        video, _, tube = dets[j]
        hit = reached = False
        if video in tubes_of:
            ious = [tube_iou(g, tube) for g in tubes_of[video]]
            best = np.argmax(ious)
            if ious[best] >= thr:
                reached = True
                if not used[video][best]:
                    used[video][best] = True
                    hit = True
        yield hit, reached, dets[j]


def video_ap(gt, vdets, thr):
    """Returns (mAP, {label_name: AP}) in percent."""
    videos = gt['test_videos'][0]
    per_class = {}
    for label, name in enumerate(gt['labels']):
        if name in EXCLUDED:
            continue
        num_gt = sum(len(gt['gttubes'][v].get(label, [])) for v in videos)
        if num_gt == 0:
            continue
        tp = fp = 0
        rows = []
        for hit, _, _ in _class_matches(gt, vdets, label, thr):
            tp, fp = tp + hit, fp + (not hit)
            rows.append([tp / (tp + fp), tp / num_gt])
        per_class[name] = 100 * all_point_ap(np.array(rows).reshape(-1, 2))
    values = list(per_class.values())
    return (float(np.mean(values)) if values else 0.0), per_class


def video_ap_range(gt, vdets, first, step, count):
    total = 0
    for i in range(count):
        total += video_ap(gt, vdets, first + step * i)[0]
    return total / float(count)


def video_ap_error(gt, vdets, thr):
    """Returns {'per_class': {name: {column: value}}, 'mean': {...}} (protocol videoAP_error)."""
    videos = gt['test_videos'][0]
    th = math.sqrt(thr)
    columns = ('AP', 'ER', 'EN', 'EL', 'EC', 'ET', 'ECT', 'ECL', 'ETL', 'ECTL')
    rows = {}
    for label, name in enumerate(gt['labels']):
        if name in EXCLUDED:
            continue
        num_gt = sum(len(gt['gttubes'][v].get(label, [])) for v in videos)
        counts = dict.fromkeys(columns[1:], 0)
        tp = fp = 0
        table = []
        for hit, reached, (video, _, tube) in _class_matches(gt, vdets, label, thr):
            if hit:
                tp += 1
            else:
                fp += 1
                if reached:
                    cause = 'ER'
                else:
                    others = [
                        tube_iou(g, tube)
                        for other, tubes in gt['gttubes'][video].items()
                        if other != label
                        for g in tubes
                    ]
                    cause = None
                    if others and others[np.argmax(others)] >= thr:
                        cause = 'EC'
                    if cause is None:
                        everyone = [
                            (other, g)
                            for other, tubes in gt['gttubes'][video].items()
                            for g in tubes
                        ]
                        ious = [tube_iou(g, tube) for _, g in everyone]
                        best = np.argmax(ious) if ious else None
                        if best is None or not ious[best] > 0:
                            cause = 'EN'
                        else:
                            other, g = everyone[best]
                            t_iou = tube_iou(g, tube, 'temporal')
                            s_iou = tube_iou(g, tube, 'spatial')
                            prefix = '' if other == label else 'C'
                            if t_iou >= th:
                                cause = 'E' + prefix + 'L'
                            elif s_iou >= th:
                                cause = 'E' + prefix + 'T'
                            else:
                                cause = 'E' + prefix + 'TL'
                counts[cause] += 1
            n = tp + fp
            table.append(
                [tp / n, tp / num_gt if num_gt else 0.0] + [counts[c] / n for c in columns[1:]]
            )
        table = np.array(table, dtype=np.float32).reshape(-1, len(columns) + 1)
        values = {'AP': 100 * all_point_ap(table[:, [0, 1]])}
        for j, column in enumerate(columns[1:]):
            values[column] = 100 * all_point_ap(table[:, [j + 2, 1]])
        values['EM'] = 100 - 100 * table[-1, 1] if len(table) else 100
        rows[name] = values
    mean = {c: float(np.mean(np.array([rows[n][c] for n in rows]))) for c in columns + ('EM',)}
    return dict(per_class=rows, mean=mean)


def nms(dets, thr=0.6, top_k=10):
    """One-pass tubelet suppression of an (n, 5) [x1, y1, x2, y2, score] array."""
    dets = np.array(dets, dtype=np.float64)
    if len(dets) == 0:
        return dets
    area = (dets[:, 2] - dets[:, 0] + 1) * (dets[:, 3] - dets[:, 1] + 1)
    weight = np.ones(len(dets))
    order = list(np.argsort(dets[:, 4])[::-1])
    while order:
        best, rest = order[0], order[1:]
        keep = []
        for j in rest:
            iw = max(0, min(dets[best, 2], dets[j, 2]) - max(dets[best, 0], dets[j, 0]) + 1)
            ih = max(0, min(dets[best, 3], dets[j, 3]) - max(dets[best, 1], dets[j, 1]) + 1)
            inter = iw * ih
            iou = inter / (area[j] + area[best] - inter)
            if iou > thr:
                weight[j] = 1 - iou
            elif iou <= thr:
                keep.append(j)
        order = keep
    dets[:, 4] = dets[:, 4] * weight
    return dets[np.argsort(dets[:, 4])[::-1]][:top_k]


def link(gt, frame_dets, len_thr=15, score_thr=0.005):
    """Protocol linker, one video, label and frame at a time. Returns {label: [(v, s, tube)]}."""
    videos = gt['test_videos'][0]
    labels = range(len(gt['labels']))
    out = {label: [] for label in labels}
    for iv, video in enumerate(videos):
        mine = frame_dets[frame_dets[:, 0] == iv]
        if len(mine) == 0:
            continue
        for label in labels:
            finished, live = [], []
            for frame in range(1, gt['nframes'][video] + 1):
                rows = mine[(mine[:, 1] == frame) & (mine[:, 2] == label)]
                boxes = nms(np.concatenate([rows[:, 4:8], rows[:, 3:4]], axis=1).reshape(-1, 5))
                means = [np.mean(np.array([box[4] for _, box in tube])) for tube in live]
                live = [live[i] for i in np.argsort(-np.array(means))]
                ended = []
                for i, tube in enumerate(live):
                    ious = iou_many_to_one(boxes[:, :4], tube[-1][1][:4]) if len(boxes) else []
                    ok = np.where(np.asarray(ious) >= 0.5)[0]
                    if ok.size:
                        pick = ok[np.argmax(boxes[ok, 4])]
                        tube.append((frame, boxes[pick]))
                        boxes = np.delete(boxes, pick, axis=0)
                    else:
                        ended.append(i)
                for i in reversed(ended):
                    finished.append(live.pop(i))
                live.extend([[(frame, box)] for box in boxes])
            for tube in finished + live:
                score = np.mean(np.array([box[4] for _, box in tube]))
                length = tube[-1][0] - tube[0][0] + 1
                if score < score_thr or length < len_thr:
                    continue
                rows = np.zeros((length, 6), dtype=np.float32)
                rows[:, 0] = np.arange(tube[0][0], tube[-1][0] + 1)
                rows[:, 1:5] = np.array([box[:4] for _, box in tube])
                rows[:, 5] = np.array([box[4] for _, box in tube])
                out[label].append((video, score, rows))
    return out


__all__ = [
    'EXCLUDED',
    'all_point_ap',
    'frame_ap',
    'iou_many_to_one',
    'link',
    'nms',
    'tube_iou',
    'video_ap',
    'video_ap_error',
    'video_ap_range',
]
