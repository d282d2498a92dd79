"""MultiSports-format cases for the evaluation, ensemble and preparation tests.

* :func:`make_case`: seeded random cases for the agreement tests. Each case has
  excluded and empty classes, a video without detections, tied scores (scores
  on a coarse grid), duplicated boxes (so the tubelet suppression acts), GT
  tubes of one label that touch in one frame, and float32 or float64 tubes.
* :func:`make_metric_gt`, :func:`perfect_samples`, :func:`evaluate_metric`:
  a GT of well-separated persons and the data samples that score 100 with
  ``MultiSportsTubeMetric``.
* :func:`make_ensemble_gt`, :func:`make_ensemble_dets`: frame detections of
  several "models" on the same proposals, as the metric dumps them.
* :func:`make_preparation_gt`: the two-video GT of the preparation tests.

Numpy only at import (``perfect_samples`` imports torch when called). The slow
references these cases are checked against: :mod:`.evaluation_reference`.
"""

import os.path as osp
from typing import Callable, List, Sequence, Tuple

import numpy as np

from pcca_plugin.utils.multisports_format import EXCLUDED_CLASS_NAMES, frame_key
from pcca_plugin.utils.pickle_io import dump_pickle

#: Label names: two excluded ones, five evaluated ones (the last one never has GT).
LABELS = [EXCLUDED_CLASS_NAMES[0], 'run', 'jump', EXCLUDED_CLASS_NAMES[4], 'pass', 'shoot', 'idle']
EMPTY_LABEL = 6


def _walk(rng, length, width, height):
    """(length, 4) boxes of a person moving smoothly."""
    size = rng.uniform([20, 30], [60, 90])
    centre = rng.uniform([size[0], size[1]], [width - size[0], height - size[1]])
    steps = np.cumsum(rng.normal(0, 2.0, size=(length, 2)), axis=0)
    centre = centre + steps
    half = size / 2
    return np.concatenate([centre - half, centre + half], axis=1)


#: Frame size ``(height, width)`` of the seeded cases.
CASE_RESOLUTION = (240, 320)


def _case_gt(videos, nframes, gttubes) -> dict:
    """The GT dict of a seeded case (every video evaluated, labels :data:`LABELS`)."""
    return dict(
        labels=list(LABELS),
        train_videos=[[]],
        test_videos=[videos],
        nframes=nframes,
        resolution=dict.fromkeys(videos, CASE_RESOLUTION),
        gttubes=gttubes,
    )


def make_case(seed, num_videos=4, tube_dtype=np.float32, tie_grid=0.1, det_dtype=np.float64):
    """Returns ``(gt, frame_dets)``: a GT dict and an (M, 8) detection array."""
    rng = np.random.default_rng(seed)
    videos = [f'sport/v_{seed}_{i}' for i in range(num_videos)]
    nframes = {v: int(rng.integers(18, 40)) for v in videos}
    gttubes = {}
    persons = {}
    for v in videos:
        n = nframes[v]
        persons[v] = [_walk(rng, n, 320, 240) for _ in range(3)]
        tubes = {}
        for p, track in enumerate(persons[v]):
            label = int(rng.choice([0, 1, 2, 4, 5]))
            start = int(rng.integers(1, n // 2))
            stop = int(rng.integers(start + 1, n + 1))
            frames = np.arange(start, stop + 1)
            tube = np.concatenate([frames[:, None], track[frames - 1]], axis=1).astype(tube_dtype)
            tubes.setdefault(label, []).append(tube)
            if p == 0 and stop < n:  # a tube of the same label touching the first in one frame
                frames2 = np.arange(stop, n + 1)
                tube2 = np.concatenate([frames2[:, None], track[frames2 - 1]], axis=1)
                tubes[label].append(tube2.astype(tube_dtype))
        gttubes[v] = tubes
    gt = _case_gt(videos, nframes, gttubes)
    rows = []
    for iv, v in enumerate(videos[:-1]):  # the last video has no detections
        for frame in range(1, nframes[v] + 1):
            boxes = [track[frame - 1] + rng.normal(0, 3, 4) for track in persons[v]]
            boxes.append(_walk(rng, 1, 320, 240)[0])  # a distractor
            if rng.random() < 0.3:
                boxes.append(boxes[0] + rng.normal(0, 1, 4))  # a near duplicate
            for box in boxes:
                for label in rng.choice([0, 1, 2, 4, 5, 6], size=3, replace=False):
                    score = rng.random()
                    if tie_grid:
                        score = np.round(score / tie_grid) * tie_grid
                    rows.append([iv, frame, label, score, *box])
    dets = np.array(rows, dtype=det_dtype).reshape(-1, 8)
    return gt, dets


#: Persons of one crowd in :func:`make_crowded_case` and how far apart they stand (pixels).
CROWD_SIZE = 4
CROWD_SPACING = 6.0


def make_crowded_case(
    seed,
    num_videos=3,
    tube_dtype=np.float32,
    det_dtype=np.float64,
    integer_boxes=False,
    tie_grid=0.125,
):
    """A case where one detection overlaps several GT boxes of its class in the same frame.

    Each video has a crowd of :data:`CROWD_SIZE` persons of one label standing
    :data:`CROWD_SPACING` pixels apart (their boxes overlap with IoU well over
    0.5), each with a GT tube of that label, plus a lone person of another label.
    Every person gets two or three jittered detections per frame, scores on a
    grid of ``tie_grid`` (ties; 0: no grid), so that the best GT of a detection
    is often taken by a better one: the case where matching with or without removing the matched GT
    differ (``docs/protocol.md``, "The 2021 challenge server"). With
    ``integer_boxes`` the boxes are whole pixels, which puts many IoUs exactly on
    the thresholds.

    Returns:
        ``(gt, frame_dets)`` as :func:`make_case`.
    """
    rng = np.random.default_rng(seed)
    videos = [f'crowd/v_{seed}_{i}' for i in range(num_videos)]
    nframes = {v: int(rng.integers(16, 30)) for v in videos}
    gttubes, persons = {}, {}
    for v in videos:
        n = nframes[v]
        centre = _walk(rng, n, 320, 240)  # (n, 4) the crowd's leader
        crowd = [centre + np.array([1, 0, 1, 0]) * CROWD_SPACING * k for k in range(CROWD_SIZE)]
        lone = _walk(rng, n, 320, 240)
        label, other = (int(x) for x in rng.choice([1, 2, 4, 5], size=2, replace=False))
        persons[v] = [(track, label) for track in crowd] + [(lone, other)]
        tubes = {}
        for track, person_label in persons[v]:
            start = int(rng.integers(1, n // 3))
            stop = int(rng.integers(2 * n // 3, n + 1))
            frames = np.arange(start, stop + 1)
            boxes = track[frames - 1]
            if integer_boxes:
                boxes = np.round(boxes)
            tube = np.concatenate([frames[:, None], boxes], axis=1).astype(tube_dtype)
            tubes.setdefault(person_label, []).append(tube)
        gttubes[v] = tubes
    gt = _case_gt(videos, nframes, gttubes)
    rows = []
    for iv, v in enumerate(videos):
        for frame in range(1, nframes[v] + 1):
            for track, person_label in persons[v]:
                for _ in range(int(rng.integers(2, 4))):
                    box = track[frame - 1] + rng.normal(0, 2.5, 4)
                    if integer_boxes:
                        box = np.round(box)
                    labels = [person_label] if rng.random() < 0.7 else [person_label, 6]
                    for det_label in labels:
                        score = rng.random()
                        if tie_grid:
                            score = np.round(score / tie_grid) * tie_grid
                        rows.append([iv, frame, det_label, score, *box])
    return gt, np.array(rows, dtype=det_dtype).reshape(-1, 8)


# --- the metric: well-separated persons, perfect predictions ----------------------------

#: Labels of :func:`make_metric_gt`.
METRIC_NUM_LABELS = 5
#: Frame size ``(height, width)`` of :func:`make_metric_gt`'s videos.
METRIC_HEIGHT, METRIC_WIDTH = 100, 200
#: The figures ``MultiSportsTubeMetric`` reports by default.
METRIC_KEYS = ('frame_mAP@0.5', 'video_mAP@0.2', 'video_mAP@0.5', 'video_mAP@0.1:0.9')


def make_metric_gt(num_videos=6, nframes=40, seed=0):
    """Videos with two persons far apart, each doing one action for >= 15 frames."""
    rng = np.random.default_rng(seed)
    videos = [f'sport/v_{i}' for i in range(num_videos)]
    gttubes = {}
    for i, v in enumerate(videos):
        tubes = {}
        for person in range(2):
            label = int((2 * i + person) % METRIC_NUM_LABELS)
            first = int(rng.integers(1, 10))
            last = int(rng.integers(first + 20, nframes + 1))
            frames = np.arange(first, last + 1)
            x = 10 + 100 * person + np.linspace(0, 5, frames.size)
            boxes = np.column_stack([x, np.full_like(x, 20), x + 40, np.full_like(x, 80)])
            tubes.setdefault(label, []).append(np.column_stack([frames, boxes]).astype(np.float32))
        gttubes[v] = tubes
    return dict(
        labels=[f'action {c}' for c in range(METRIC_NUM_LABELS)],
        train_videos=[[]],
        test_videos=[videos],
        nframes=dict.fromkeys(videos, nframes),
        resolution=dict.fromkeys(videos, (METRIC_HEIGHT, METRIC_WIDTH)),
        gttubes=gttubes,
    )


def perfect_samples(gt, shuffle_labels=None, background=False):
    """One data-sample dict per annotated frame with normalised boxes and one-hot scores.

    Args:
        gt: a GT dict of :func:`make_metric_gt`.
        shuffle_labels: ``(C,)`` the class each label scores instead (None: itself).
        background: prepend a background column of 0.9 (as a softmax head gives).
    """
    import torch

    per_frame = {}
    for v in gt['test_videos'][0]:
        for label, tubes in gt['gttubes'][v].items():
            for tube in tubes:
                for row in tube:
                    per_frame.setdefault((v, int(row[0])), []).append((label, row[1:5]))
    scale = np.array([METRIC_WIDTH, METRIC_HEIGHT, METRIC_WIDTH, METRIC_HEIGHT])
    samples = []
    for (video, frame), items in sorted(per_frame.items()):
        boxes = np.array([b for _, b in items]) / scale  # (K, 4)
        scores = np.zeros((len(items), METRIC_NUM_LABELS))
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


def evaluate_metric(metric, samples):
    """``metric.process`` the samples, then ``compute_metrics``: the figures."""
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)


# --- ensembles: several models' scores on the same proposals -----------------------------

#: Classes, videos and frames of :func:`make_ensemble_gt` / :func:`make_ensemble_dets`.
ENSEMBLE_NUM_CLASSES = 3
ENSEMBLE_VIDEOS = ['sport/v_a', 'sport/v_b']
ENSEMBLE_NUM_FRAMES = 10


def make_ensemble_gt():
    """One tube per video, one label per video, every frame."""
    frames = range(1, ENSEMBLE_NUM_FRAMES + 1)
    tube = np.array([[f, 10, 10, 50, 80] for f in frames], dtype=np.float32)
    return dict(
        labels=['a', 'b', 'c'],
        train_videos=[[]],
        test_videos=[ENSEMBLE_VIDEOS],
        nframes=dict.fromkeys(ENSEMBLE_VIDEOS, ENSEMBLE_NUM_FRAMES),
        resolution=dict.fromkeys(ENSEMBLE_VIDEOS, (120, 160)),
        gttubes={v: {i: [tube]} for i, v in enumerate(ENSEMBLE_VIDEOS)},
    )


def make_ensemble_dets(seed):
    """Rows as MultiSportsTubeMetric writes them: per frame, box-major, every class.

    The boxes are the same for every ``seed``; the scores differ.
    """
    rng = np.random.default_rng(0)  # same boxes for every seed
    scores = np.random.default_rng(seed)
    rows = []
    for video in range(len(ENSEMBLE_VIDEOS)):
        for frame in range(1, ENSEMBLE_NUM_FRAMES + 1):
            for _ in range(2):
                x1, y1 = rng.uniform(0, 60, 2)
                box = [x1, y1, x1 + 40, y1 + 60]
                for label in range(ENSEMBLE_NUM_CLASSES):
                    rows.append([video, frame, label, scores.uniform(), *box])
    return np.array(rows)


def write_ensemble_inputs(
    folder: str, seeds: Sequence[int] = (1, 2), write: Callable = dump_pickle
) -> Tuple[List[str], str]:
    """Write ``dets_<seed>.pkl`` of every seed and ``gt.pkl`` into ``folder``.

    Args:
        folder: an existing folder.
        seeds: one result file per seed (:func:`make_ensemble_dets`).
        write: ``write(obj, path)`` writes one pickle (default: ``dump_pickle``).

    Returns:
        ``(result_files, gt_file)``.
    """
    paths = [osp.join(folder, f'dets_{seed}.pkl') for seed in seeds]
    for seed, path in zip(seeds, paths):
        write(make_ensemble_dets(seed), path)
    gt_path = osp.join(folder, 'gt.pkl')
    write(make_ensemble_gt(), gt_path)
    return paths, gt_path


# --- proposals ----------------------------------------------------------------------------


def gt_boxes_as_proposals(gt, videos, dtype=np.float64):
    """The GT person boxes of ``videos`` as normalised proposals, one per distinct box (AP 100).

    Returns:
        frame key -> ``(n, 5)`` ``[x1, y1, x2, y2, score]``, scores from 1.0 down to 0.5.
    """
    proposals = {}
    for video in videos:
        height, width = gt['resolution'][video]
        per_frame = {}
        for tubes in gt['gttubes'][video].values():
            for tube in tubes:
                for frame, *box in tube:
                    per_frame.setdefault(int(frame), []).append(box)
        for frame, rows in per_frame.items():
            rows = np.unique(np.asarray(rows, dtype=np.float64), axis=0)  # (n, 4)
            rows = rows / [width, height, width, height]
            scores = np.linspace(1.0, 0.5, len(rows))[:, None]  # (n, 1)
            proposals[frame_key(video, frame)] = np.concatenate([rows, scores], 1).astype(dtype)
    return proposals


# --- preparation ----------------------------------------------------------------------------

#: ``(height, width)`` of :func:`make_preparation_gt`'s videos.
PREPARATION_RESOLUTION = (50, 100)


def make_preparation_gt():
    """Two videos of 10 frames; video 'a/v1' has a 2-label person and a second person."""
    box = np.array([10.0, 5.0, 30.0, 45.0])
    other = np.array([60.0, 5.0, 80.0, 45.0])

    def tube(first, last, xyxy):
        frames = np.arange(first, last + 1, dtype=np.float32)[:, None]
        return np.concatenate([frames, np.tile(xyxy, (len(frames), 1))], 1).astype(np.float32)

    return dict(
        labels=['c0', 'c1', 'c2'],
        train_videos=[['a/v1']],
        test_videos=[['a/v2']],
        nframes={'a/v1': 10, 'a/v2': 10},
        resolution={'a/v1': PREPARATION_RESOLUTION, 'a/v2': PREPARATION_RESOLUTION},
        gttubes={
            'a/v1': {0: [tube(2, 6, box)], 2: [tube(4, 8, box), tube(3, 4, other)]},
            'a/v2': {1: [tube(1, 3, other)]},
        },
    )


__all__ = [
    'EMPTY_LABEL',
    'ENSEMBLE_NUM_CLASSES',
    'ENSEMBLE_NUM_FRAMES',
    'ENSEMBLE_VIDEOS',
    'LABELS',
    'METRIC_HEIGHT',
    'METRIC_KEYS',
    'METRIC_NUM_LABELS',
    'METRIC_WIDTH',
    'PREPARATION_RESOLUTION',
    'evaluate_metric',
    'gt_boxes_as_proposals',
    'make_case',
    'make_ensemble_dets',
    'make_ensemble_gt',
    'make_metric_gt',
    'make_preparation_gt',
    'perfect_samples',
    'write_ensemble_inputs',
]


# --- the 2021 challenge server: its reference, run under numpy 1.x ----------------------


def server2021_reference_figures(cases, folder, sort_kind='quicksort'):
    """The six figures of each case by :mod:`.server2021_reference`, run under numpy 1.x.

    Args:
        cases: ``[(gt, frame_detections, video_detections), ...]``.
        folder: where the cases are written (as numpy 1.x pickles, protocol 2).
        sort_kind: ``'quicksort'`` (numpy's default, the server's) or ``'stable'``.

    Returns:
        ``(numpy_version, [six-figure dict per case])``; the version is the
        reference interpreter's numpy.
    """
    folders = []
    for i, (gt, frames, tubes) in enumerate(cases):
        case = osp.join(folder, f'case{i}')
        for name, obj in (
            ('gt.pkl', gt),
            ('frame_detections.pkl', frames),
            ('video_detections.pkl', tubes),
        ):
            dump_pickle(obj, osp.join(case, name), protocol=2, style='numpy1')
        folders.append(case)
    return run_server2021_reference(folders, osp.join(folder, 'job.json'), sort_kind)


def run_server2021_reference(folders, job, sort_kind='quicksort'):
    """Run :mod:`.server2021_reference` under numpy 1.x on prepared case folders.

    Args:
        folders: each holds ``gt.pkl``, ``frame_detections.pkl`` and
            ``video_detections.pkl`` that numpy 1.x reads with a plain ``pickle.load``.
        job: where the job file is written.
        sort_kind: ``'quicksort'`` or ``'stable'``.

    Returns:
        ``(numpy_version, [six-figure dict per folder])``.
    """
    import json
    import subprocess

    from pcca_plugin.testing import numpy1_python, repo_path

    with open(job, 'w') as f:
        json.dump(
            dict(skipped=list(EXCLUDED_CLASS_NAMES), sort_kind=sort_kind, cases=list(folders)), f
        )
    script = repo_path('pcca_plugin', 'testing', 'server2021_reference.py')
    done = subprocess.run(
        [numpy1_python(), script, job], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f'the numpy 1.x reference failed:\n{done.stderr[-3000:]}')
    result = json.loads(done.stdout)
    return result['numpy'], result['figures']
