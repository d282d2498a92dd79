"""A slow, plain scorer of the 2021 challenge server, for the tests (run it under numpy 1.x).

Written here from ``docs/protocol.md`` ("The 2021 challenge server"): one
detection at a time in rank order, matched against the GT boxes (tubes) of
its frame (video) that are still unmatched, with the server's ``+1``
geometry, float32 precision-recall tables and ACT's trapezoid AP. It leaves
the arithmetic to numpy, so that under numpy 1.x (the server's) it gets the
server's dtypes by itself: a float32 IoU compared with a Python float in
float64, a temporal IoU made float64 by its ``+ 1``, threshold ranges summed
in float64. ``pcca_plugin.evaluation.functional.server2021`` must agree with
it to 1e-6; the tests run it in the bare numpy 1.x environment
(:func:`pcca_plugin.testing.numpy1_python`).

It imports numpy only and runs as a script by its path::

    python server2021_reference.py JOB.json

``JOB.json`` is ``{"skipped": [class names], "sort_kind": "quicksort" or
"stable", "cases": [folder, ...]}``; each folder holds ``gt.pkl``,
``frame_detections.pkl`` and ``video_detections.pkl`` (plain pickles numpy
1.x reads). It prints a JSON list with the six figures of each case.
"""

import json
import os.path as osp
import pickle
import sys

import numpy as np

#: The frame-mAP threshold and the video thresholds of the server.
FRAME_THRESHOLD = 0.5
SINGLE_VIDEO_THRESHOLDS = {'V@0.2': 0.2, 'V@0.5': 0.5}
#: name -> (first, step, count): thresholds ``first + step * i``.
VIDEO_THRESHOLD_RANGES = {
    'V@0.05:0.45': (0.05, 0.05, 9),
    'V@0.5:0.95': (0.5, 0.05, 10),
    'V@0.1:0.9': (0.1, 0.1, 9),
}


def iou_plus_one(boxes_a, boxes_b):
    """Row-wise IoU of ``(n, 4)`` arrays (broadcast), one pixel added to every side length."""
    inter_w = np.maximum(
        0,
        np.minimum(boxes_a[:, 2] + 1, boxes_b[:, 2] + 1) - np.maximum(boxes_a[:, 0], boxes_b[:, 0]),
    )
    inter_h = np.maximum(
        0,
        np.minimum(boxes_a[:, 3] + 1, boxes_b[:, 3] + 1) - np.maximum(boxes_a[:, 1], boxes_b[:, 1]),
    )
    inter = inter_w * inter_h
    area_a = (boxes_a[:, 2] - boxes_a[:, 0] + 1) * (boxes_a[:, 3] - boxes_a[:, 1] + 1)
    area_b = (boxes_b[:, 2] - boxes_b[:, 0] + 1) * (boxes_b[:, 3] - boxes_b[:, 1] + 1)
    return inter / (area_a + area_b - inter)


def tube_iou_plus_one(gt_tube, det_tube):
    """Spatio-temporal IoU, frames counted inclusively; 0.0 when the tubes share no frame."""
    first = max(gt_tube[0, 0], det_tube[0, 0])
    last = min(gt_tube[-1, 0], det_tube[-1, 0])
    if last < first:
        return 0.0
    in_gt = (gt_tube[:, 0] >= first) & (gt_tube[:, 0] <= last)
    in_det = (det_tube[:, 0] >= first) & (det_tube[:, 0] <= last)
    spatial = np.mean(iou_plus_one(gt_tube[in_gt, 1:5], det_tube[in_det, 1:5]))
    span = max(gt_tube[-1, 0], det_tube[-1, 0]) - min(gt_tube[0, 0], det_tube[0, 0]) + 1
    return spatial * ((last - first + 1) / span)


def trapezoid_ap(precision, recall):
    """Area under the curve from (recall 0, precision 1), the table held in float32."""
    p = np.array([1.0] + precision, dtype=np.float32)
    r = np.array([0.0] + recall, dtype=np.float32)
    return np.sum((r[1:] - r[:-1]) * (p[1:] + p[:-1]) * 0.5)


def take_frame_box(remaining, det_row):
    """Match one frame detection ``(1, 8)``: True when it takes a remaining GT box of its frame."""
    key = (int(det_row[0, 0]), int(det_row[0, 1]))
    if key not in remaining:
        return False
    ious = iou_plus_one(remaining[key], det_row[:, 4:8])
    best = np.argmax(ious)
    if not ious[best] >= FRAME_THRESHOLD:
        return False
    remaining[key] = np.delete(remaining[key], best, axis=0)
    if remaining[key].size == 0:
        del remaining[key]
    return True


def take_tube(remaining, entry, threshold):
    """Match one ``(video, score, tube)``: True when it takes a remaining GT tube of its video."""
    video, _, tube = entry
    if video not in remaining:
        return False
    ious = [tube_iou_plus_one(g, tube) for g in remaining[video]]
    best = np.argmax(ious)
    if not ious[best] >= threshold:
        return False
    del remaining[video][best]
    if not remaining[video]:
        del remaining[video]
    return True


def ranked_ap(outcomes, total):
    """AP of the true-positive flags of detections in rank order, ``total`` GT instances."""
    precision, recall, true_pos = [], [], 0
    for seen, outcome in enumerate(outcomes, start=1):
        true_pos += bool(outcome)
        precision.append(true_pos / seen)
        recall.append(true_pos / total)
    return trapezoid_ap(precision, recall)


def scored_labels(gt, skipped):
    """``(label, the evaluated videos' tube dicts)`` of every class the server scores."""
    videos = gt['test_videos'][0]
    for label, name in enumerate(gt['labels']):
        if name not in skipped:
            yield label, [(video, gt['gttubes'][video]) for video in videos]


def frame_map(gt, dets, skipped, sort_kind):
    aps = []
    for label, video_tubes in scored_labels(gt, skipped):
        remaining = {}
        for video_index, (_, tubes_of) in enumerate(video_tubes):
            for tube in tubes_of.get(label, []):
                for row in tube:
                    remaining.setdefault((video_index, int(row[0])), []).append(row[1:5].tolist())
        total = sum(len(boxes) for boxes in remaining.values())
        if total == 0:
            continue
        remaining = {key: np.array(boxes) for key, boxes in remaining.items()}
        mine = dets[dets[:, 2] == label]
        ranked = np.argsort(-mine[:, 3], kind=sort_kind)
        aps.append(ranked_ap([take_frame_box(remaining, mine[j : j + 1]) for j in ranked], total))
    return np.mean(100 * np.array(aps))


def video_map(gt, vdets, threshold, skipped, sort_kind):
    aps = []
    for label, video_tubes in scored_labels(gt, skipped):
        remaining = {}
        for video, tubes_of in video_tubes:
            tubes = list(tubes_of.get(label, []))
            if tubes:
                remaining[video] = tubes
        total = sum(len(tubes) for tubes in remaining.values())
        if total == 0:
            continue
        entries = vdets.get(label, [])
        ranked = np.argsort(-np.array([entry[1] for entry in entries]), kind=sort_kind)
        outcomes = [take_tube(remaining, entries[j], threshold) for j in ranked]
        aps.append(ranked_ap(outcomes, total))
    return np.mean(100 * np.array(aps))


def six_figures(folder, skipped, sort_kind):
    def load(name):
        with open(osp.join(folder, name), 'rb') as f:
            return pickle.load(f)

    gt = load('gt.pkl')
    frames, tubes = load('frame_detections.pkl'), load('video_detections.pkl')
    figures = {'F@0.5': frame_map(gt, frames, skipped, sort_kind)}
    for name, threshold in SINGLE_VIDEO_THRESHOLDS.items():
        figures[name] = video_map(gt, tubes, threshold, skipped, sort_kind)
    for name, (first, step, count) in VIDEO_THRESHOLD_RANGES.items():
        total = 0
        for i in range(count):
            total += video_map(gt, tubes, first + step * i, skipped, sort_kind)
        figures[name] = total / count
    return {name: float(value) for name, value in figures.items()}


def main(job_path):
    with open(job_path) as f:
        job = json.load(f)
    skipped = set(job['skipped'])
    results = [six_figures(folder, skipped, job['sort_kind']) for folder in job['cases']]
    print(json.dumps(dict(numpy=np.__version__, figures=results)))


if __name__ == '__main__':
    main(sys.argv[1])
