"""Seeded random MultiSports-like cases for the agreement tests.

Each case has excluded and empty classes, a video without detections, tied
scores (scores on a coarse grid), duplicated boxes (so the tubelet
suppression acts), GT tubes of one label that touch in one frame, and
float32 or float64 tubes.
"""

import numpy as np

from pcca_plugin.utils.multisports_format import EXCLUDED_CLASS_NAMES

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


def make_case(seed, num_videos=4, tube_dtype=np.float32, tie_grid=0.1, det_dtype=np.float64):
    """Returns ``(gt, frame_dets)``: a GT dict and an (M, 8) detection array."""
    rng = np.random.default_rng(seed)
    videos = [f'sport/v_{seed}_{i}' for i in range(num_videos)]
    nframes = {v: int(rng.integers(18, 40)) for v in videos}
    resolution = dict.fromkeys(videos, (240, 320))
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
    gt = dict(
        labels=list(LABELS),
        train_videos=[[]],
        test_videos=[videos],
        nframes=nframes,
        resolution=resolution,
        gttubes=gttubes,
    )
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
