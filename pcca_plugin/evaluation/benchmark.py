"""A MultiSports-sized benchmark of the evaluation command line against the official frameAP.

The synthetic case mirrors the MultiSports validation set: 555 videos x 750
frames, 8 person tracks per video, every person box scored for its 3 best of
66 classes (9,990,000 frame detections), about 12 GT tubes per video following
the persons. It is written as the official files (``gt.pkl``,
``frame_detections.pkl``).

Measured in one run, each command a fresh process as a user runs it
(:func:`measure_all`):

* ``eval_multisports.py frameAP`` and ``eval_multisports.py link``: the wall
  time of the whole process (interpreter start and imports included), the
  in-process time (``seconds`` of the command's ``--json`` report: reading
  the files, evaluating, writing), and the peak resident memory of the
  process (``ru_maxrss`` from ``os.wait4``);
* ``eval_multisports.py server2021`` (the 2021 challenge server's scorer)
  on the case folder, which then holds ``frame_detections.pkl`` and the
  linked ``video_detections.pkl``: wall time and peak RSS (its ``--json``
  holds only the six figures, so no in-process time);
* the official ``frameAP`` (mmaction2 1.2.0's port of the official
  ``evaluate_multisports.py``, loaded from its file so that only numpy,
  ``mmengine.logging`` and ``rich`` are imported, as the official script
  imports only numpy), reading the detections with ``pickle.load`` as the
  official script does: the same three figures.

The case is generated and the official frameAP run in child processes
(:func:`child_command`), so that this process stays small: a child's
``ru_maxrss`` starts from the memory of the process that spawned it.
``tools/benchmark_eval.py`` is the command line; ``docs/evaluation.md``
shows its table.
"""

import importlib.util
import json
import os
import os.path as osp
import pickle
import subprocess
import sys
import time
from types import ModuleType
from typing import Dict, List, Tuple

import numpy as np

from pcca_plugin.utils.multisports_format import EXCLUDED_CLASS_NAMES
from pcca_plugin.utils.pickle_io import dump_pickle

#: MultiSports validation-set size.
NUM_VIDEOS = 555
FRAMES_PER_VIDEO = 750
PERSONS_PER_FRAME = 8
CLASSES_PER_BOX = 3
NUM_SPORTS = 4
ACTIONS_PER_SPORT = 15
GT_TUBES_PER_VIDEO = 12
GT_TUBE_LENGTH = (20, 120)
FRAME_SIZE = (720, 1280)  # (height, width)
DOMINANT_SEGMENT = 60  # frames during which a person's top class stays the same
GT_CLASS_PROBABILITY = 0.8  # chance that a person inside a GT tube scores its class first
#: Person box sizes (width, height) in pixels, drawn uniformly between these.
BOX_SIZE_RANGE = ((40, 90), (120, 260))
#: Persons start in the central part of the frame (fractions of its size).
START_RANGE = (0.2, 0.8)
#: Standard deviations (pixels) of a person's step per frame and of a detected box's noise.
WALK_STEP_STD = 1.5
BOX_NOISE_STD = 2.0
#: Score ranges: the dominant class in [0.4, 1), the two others in [0, 0.4).
DOMINANT_SCORE_MIN = 0.4
#: Videos of the ``--quick`` case.
QUICK_VIDEOS = 3
#: Columns of the printed table (documented in docs/evaluation.md).
COLUMNS = ('command', 'CLI wall s', 'in-process s', 'peak RSS MiB')
#: Rows of the printed table, in order.
ROWS = (
    'eval_multisports.py frameAP',
    'eval_multisports.py link',
    'frameAP + link (sum; RSS: max)',
    'official frameAP (mmaction2 1.2.0 port)',
    'eval_multisports.py server2021 (2021 server)',
)
#: The bars of issue 14 for frameAP + link on the MultiSports-sized case.
TIME_BAR_S = 10.0
RSS_BAR_MIB = 1024.0
#: The bar of issue 20 for server2021 on the same case (its memory: at most frameAP + link's).
SERVER2021_TIME_BAR_S = 15.0
KIB_PER_MIB = 1024.0
#: The official frame-mAP threshold.
FRAME_IOU_THR = 0.5


def make_labels() -> List[str]:
    """66 names: 60 per-sport actions plus the 6 the challenge excludes."""
    names = [f'sport{s} action{a}' for s in range(NUM_SPORTS) for a in range(ACTIONS_PER_SPORT)]
    return names + list(EXCLUDED_CLASS_NAMES)


def _person_tracks(rng: np.random.Generator, num_videos: int) -> np.ndarray:
    """``(V, P, F, 4)`` boxes of persons walking randomly."""
    height, width = FRAME_SIZE
    n_f, n_p = FRAMES_PER_VIDEO, PERSONS_PER_FRAME
    size = rng.uniform(*BOX_SIZE_RANGE, size=(num_videos, n_p, 1, 2))
    low, high = START_RANGE
    start = rng.uniform(
        [low * width, low * height], [high * width, high * height], (num_videos, n_p, 1, 2)
    )
    walk = np.cumsum(rng.normal(0, WALK_STEP_STD, size=(num_videos, n_p, n_f, 2)), axis=2)
    centre = start + walk  # (V, P, F, 2)
    return np.concatenate([centre - size / 2, centre + size / 2], axis=3)  # (V, P, F, 4)


def generate(num_videos: int, seed: int = 0) -> Tuple[Dict, np.ndarray]:
    """The synthetic case of ``num_videos`` videos.

    Returns:
        ``(gt, frame_dets)``: a MultiSports GT dict and the ``(M, 8)`` float64
        frame detections, ``M = num_videos * 750 * 8 * 3``.
    """
    rng = np.random.default_rng(seed)
    per_sport = ACTIONS_PER_SPORT
    videos = [f'sport{v % NUM_SPORTS}/v_{v:04d}' for v in range(num_videos)]
    n_f, n_p = FRAMES_PER_VIDEO, PERSONS_PER_FRAME
    tracks = _person_tracks(rng, num_videos)  # (V, P, F, 4)
    # GT tubes: a person doing one action of the video's sport for a while.
    sport = np.arange(num_videos) % NUM_SPORTS
    gt_label = np.full((num_videos, n_p, n_f), -1, dtype=np.int64)
    gttubes = {}
    for v, name in enumerate(videos):
        tubes = {}
        for _ in range(GT_TUBES_PER_VIDEO):
            p = int(rng.integers(n_p))
            length = int(rng.integers(*GT_TUBE_LENGTH))
            first = int(rng.integers(1, n_f - length + 2))
            label = int(sport[v] * per_sport + rng.integers(per_sport))
            frames = np.arange(first, first + length)
            tube = np.concatenate([frames[:, None], tracks[v, p, frames - 1]], axis=1)
            tubes.setdefault(label, []).append(tube.astype(np.float32))
            gt_label[v, p, frames - 1] = label
        gttubes[name] = tubes
    gt = dict(
        labels=make_labels(),
        train_videos=[[]],
        test_videos=[videos],
        nframes=dict.fromkeys(videos, n_f),
        resolution=dict.fromkeys(videos, FRAME_SIZE),
        gttubes=gttubes,
    )
    # Scores: a dominant class per person and segment (the GT class inside GT tubes, mostly),
    # then two other classes of the sport.
    segments = n_f // DOMINANT_SEGMENT + 1
    dominant = rng.integers(per_sport, size=(num_videos, n_p, segments))
    dominant = np.repeat(dominant, DOMINANT_SEGMENT, axis=2)[:, :, :n_f]  # (V, P, F)
    dominant = sport[:, None, None] * per_sport + dominant
    use_gt = (gt_label >= 0) & (rng.random(gt_label.shape) < GT_CLASS_PROBABILITY)
    dominant = np.where(use_gt, gt_label, dominant)
    offsets = rng.integers(1, per_sport, size=(num_videos, n_p, n_f, 2))
    offsets[..., 1] = np.where(
        offsets[..., 1] == offsets[..., 0], offsets[..., 0] % (per_sport - 1) + 1, offsets[..., 1]
    )
    base = sport[:, None, None, None] * per_sport
    others = base + (dominant[..., None] - base + offsets) % per_sport  # (V, P, F, 2)
    classes = np.concatenate([dominant[..., None], others], axis=3)  # (V, P, F, 3)
    scores = np.concatenate(
        [
            DOMINANT_SCORE_MIN + (1 - DOMINANT_SCORE_MIN) * rng.random((num_videos, n_p, n_f, 1)),
            DOMINANT_SCORE_MIN * rng.random((num_videos, n_p, n_f, 2)),
        ],
        axis=3,
    )
    boxes = tracks + rng.normal(0, BOX_NOISE_STD, size=tracks.shape)  # (V, P, F, 4)
    boxes = boxes.transpose(0, 2, 1, 3)  # (V, F, P, 4)
    classes = classes.transpose(0, 2, 1, 3)  # (V, F, P, 3)
    scores = scores.transpose(0, 2, 1, 3)  # (V, F, P, 3)
    count = num_videos * n_f * n_p * CLASSES_PER_BOX
    dets = np.empty((count, 8))
    grid = np.indices((num_videos, n_f, n_p, CLASSES_PER_BOX)).reshape(4, -1)  # (4, M)
    dets[:, 0] = grid[0]
    dets[:, 1] = grid[1] + 1
    dets[:, 2] = classes.reshape(-1)  # (M,)
    dets[:, 3] = scores.reshape(-1)  # (M,)
    dets[:, 4:8] = np.repeat(boxes.reshape(-1, 4), CLASSES_PER_BOX, axis=0)  # (M, 4)
    return gt, dets


def write_case(folder: str, videos: int) -> None:
    """Write ``gt.pkl``, ``frame_detections.pkl`` and ``case.json`` (run in a child process)."""
    os.makedirs(folder, exist_ok=True)
    gt, dets = generate(videos)
    dump_pickle(gt, osp.join(folder, 'gt.pkl'))
    dump_pickle(dets, osp.join(folder, 'frame_detections.pkl'))
    with open(osp.join(folder, 'case.json'), 'w') as f:
        json.dump(dict(videos=videos, frame_detections=int(dets.shape[0])), f)


def official_frame_ap_module() -> ModuleType:
    """mmaction2 1.2.0's ``multisports_utils`` loaded from its file, without importing mmaction."""
    spec = importlib.util.find_spec('mmaction')
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            'the official frameAP comes from mmaction2 1.2.0, which is not installed: '
            'pip install "mmaction2==1.2.0" (or make setup)'
        )
    path = osp.join(
        spec.submodule_search_locations[0], 'evaluation', 'functional', 'multisports_utils.py'
    )
    module_spec = importlib.util.spec_from_file_location('official_multisports_utils', path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def run_official(folder: str) -> None:
    """The official frameAP as the official script runs it (``pickle.load``), in a child.

    Writes ``official.json``: ``seconds`` (reading and evaluating) and ``frame_mAP``.
    """
    from mmengine.logging import MMLogger

    official = official_frame_ap_module()
    MMLogger.get_instance('benchmark_eval')
    begin = time.perf_counter()
    with open(osp.join(folder, 'gt.pkl'), 'rb') as f:
        gt = pickle.load(f)
    with open(osp.join(folder, 'frame_detections.pkl'), 'rb') as f:
        dets = pickle.load(f)
    mean_ap = float(official.frameAP(gt, dets, FRAME_IOU_THR, print_info=False))
    result = dict(seconds=time.perf_counter() - begin, frame_mAP=mean_ap)
    with open(osp.join(folder, 'official.json'), 'w') as f:
        json.dump(result, f)


def child_command(call: str) -> List[str]:
    """A fresh interpreter that runs ``call`` of this module, e.g. ``"run_official('dir')"``."""
    return [sys.executable, '-c', f'from pcca_plugin.evaluation import benchmark; benchmark.{call}']


def generate_case(folder: str, videos: int) -> int:
    """Write the case of ``videos`` videos into ``folder`` (a child process); its detections."""
    if videos < 1:
        raise ValueError(f'--videos must be at least 1 (a case needs a video), got {videos}')
    os.makedirs(folder, exist_ok=True)
    subprocess.run(child_command(f'write_case({folder!r}, {int(videos)})'), check=True)
    with open(osp.join(folder, 'case.json')) as f:
        return json.load(f)['frame_detections']


def measure(command: List[str]) -> Dict[str, float]:
    """Run ``command``; its wall time and peak RSS (MiB) from ``os.wait4``.

    Raises:
        RuntimeError: the command failed (names it and its exit code).
    """
    begin = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - begin
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f'{" ".join(command)} failed with exit code {process.returncode}')
    return dict(wall_s=wall, peak_mib=usage.ru_maxrss / KIB_PER_MIB)  # Linux: KiB


def measure_all(folder: str, cli: str) -> Dict[str, Dict]:
    """Both commands of the CLI ``cli`` and the official frameAP, each a fresh process.

    Args:
        folder: the case written by :func:`generate_case`.
        cli: the path of ``tools/eval_multisports.py``.

    Returns:
        :data:`ROWS` -> ``wall_s``, ``in_process_s``, ``peak_mib`` (the CLI rows
        also their ``--json`` ``report``, the official row its ``frame_mAP``).
    """
    gt, dets = osp.join(folder, 'gt.pkl'), osp.join(folder, 'frame_detections.pkl')
    rows = {}
    commands = {
        ROWS[0]: ['frameAP', gt, dets],
        ROWS[1]: ['link', gt, dets, '-o', osp.join(folder, 'video_detections.pkl')],
    }
    for name, arguments in commands.items():
        report = osp.join(folder, f'{arguments[0]}.json')
        rows[name] = measure([sys.executable, cli, *arguments, '--no-progress', '--json', report])
        with open(report) as f:
            rows[name]['report'] = json.load(f)
        rows[name]['in_process_s'] = rows[name]['report']['seconds']
    first, second = rows[ROWS[0]], rows[ROWS[1]]
    rows[ROWS[2]] = dict(
        wall_s=first['wall_s'] + second['wall_s'],
        in_process_s=first['in_process_s'] + second['in_process_s'],
        peak_mib=max(first['peak_mib'], second['peak_mib']),
    )
    rows[ROWS[3]] = measure(child_command(f'run_official({folder!r})'))
    with open(osp.join(folder, 'official.json')) as f:
        official = json.load(f)
    rows[ROWS[3]]['in_process_s'] = official['seconds']
    rows[ROWS[3]]['frame_mAP'] = official['frame_mAP']
    figures = osp.join(folder, 'server2021.json')
    rows[ROWS[4]] = measure(
        [sys.executable, cli, 'server2021', gt, folder, '--no-progress', '--json', figures]
    )
    rows[ROWS[4]]['in_process_s'] = None
    with open(figures) as f:
        rows[ROWS[4]]['figures'] = json.load(f)
    return rows


def format_table(rows: Dict[str, Dict]) -> str:
    """The markdown table of :data:`COLUMNS` x :data:`ROWS`."""
    lines = ['| ' + ' | '.join(COLUMNS) + ' |', '| --- | ---: | ---: | ---: |']
    for name in ROWS:
        row = rows[name]
        in_process = '-' if row['in_process_s'] is None else f'{row["in_process_s"]:.2f}'
        lines.append(f'| {name} | {row["wall_s"]:.2f} | {in_process} | {row["peak_mib"]:.0f} |')
    return '\n'.join(lines)


def summarise(rows: Dict[str, Dict], videos: int, num_dets: int) -> Dict:
    """The JSON report of one run: the case, the machine, the rows, both frame-mAPs, the table."""
    ours = rows[ROWS[0]]['report']['frameAP']['mAP']
    official = rows[ROWS[3]]['frame_mAP']
    return dict(
        videos=videos,
        frames_per_video=FRAMES_PER_VIDEO,
        frame_detections=num_dets,
        numpy=np.__version__,
        cpus=os.cpu_count(),
        rows={name: {k: v for k, v in row.items() if k != 'report'} for name, row in rows.items()},
        frame_mAP=dict(ours=ours, official=official, identical=ours == official),
        server2021=rows[ROWS[4]]['figures'],
        table=format_table(rows),
    )
