"""Benchmark ``tools/eval_multisports.py`` on a MultiSports-sized case, with the official frameAP.

The synthetic case mirrors the MultiSports validation set: 555 videos x 750
frames, 8 person tracks per video, every person box scored for its 3 best
of 66 classes (9,990,000 frame detections), about 12 GT tubes per video
following the persons. It is written as the official files
(``gt.pkl``, ``frame_detections.pkl``).

Measured in one run, each command a fresh process as a user runs it:

* ``eval_multisports.py frameAP`` and ``eval_multisports.py link``: the wall
  time of the whole process (interpreter start and imports included), the
  in-process time (``seconds`` of the command's ``--json`` report: reading
  the files, evaluating, writing), and the peak resident memory of the
  process (``ru_maxrss`` from ``os.wait4``);
* the official ``frameAP`` (mmaction2 1.2.0's port of the official
  ``evaluate_multisports.py``, loaded from its file so that only numpy,
  ``mmengine.logging`` and ``rich`` are imported, as the official script
  imports only numpy), reading the detections with ``pickle.load`` as the
  official script does: the same three figures.

Its frame-mAP and ours are printed side by side; under the same numpy they
are identical. ``--quick`` runs the same on a 3-video case (the test suite
runs it and checks the table's columns).

Usage::

    python tools/benchmark_eval.py --out work_dirs/benchmark_eval
    python tools/benchmark_eval.py --quick --out /tmp/benchmark_eval
"""

import argparse
import importlib.util
import json
import os
import os.path as osp
import pickle
import resource
import subprocess
import sys
import time

import numpy as np  # ~25 MiB; the case itself is generated in a child process

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

#: MultiSports validation-set size.
NUM_VIDEOS = 555
FRAMES_PER_VIDEO = 750
PERSONS_PER_FRAME = 8
CLASSES_PER_BOX = 3
NUM_SPORTS = 4
GT_TUBES_PER_VIDEO = 12
GT_TUBE_LENGTH = (20, 120)
FRAME_SIZE = (720, 1280)  # (height, width)
DOMINANT_SEGMENT = 60  # frames during which a person's top class stays the same
GT_CLASS_PROBABILITY = 0.8  # chance that a person inside a GT tube scores its class first
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
)
#: The bars of issue 14 for frameAP + link on the MultiSports-sized case.
TIME_BAR_S = 10.0
RSS_BAR_MIB = 1024.0
KIB_PER_MIB = 1024.0


def make_labels():
    """66 names: 60 per-sport actions plus the 6 the challenge excludes."""
    from pcca_plugin.utils.multisports_format import EXCLUDED_CLASS_NAMES

    per_sport = 15
    names = [f'sport{s} action{a}' for s in range(NUM_SPORTS) for a in range(per_sport)]
    return names + list(EXCLUDED_CLASS_NAMES)


def generate(num_videos: int, seed: int = 0):
    """Returns ``(gt_dict, frame_dets)`` with ``frame_dets`` ``(M, 8)`` float64."""
    rng = np.random.default_rng(seed)
    labels = make_labels()
    per_sport = 15
    height, width = FRAME_SIZE
    videos = [f'sport{v % NUM_SPORTS}/v_{v:04d}' for v in range(num_videos)]
    n_f, n_p = FRAMES_PER_VIDEO, PERSONS_PER_FRAME
    size = rng.uniform([40, 90], [120, 260], size=(num_videos, n_p, 1, 2))
    start = rng.uniform(
        [0.2 * width, 0.2 * height], [0.8 * width, 0.8 * height], (num_videos, n_p, 1, 2)
    )
    walk = np.cumsum(rng.normal(0, 1.5, size=(num_videos, n_p, n_f, 2)), axis=2)
    centre = start + walk  # (V, P, F, 2)
    tracks = np.concatenate([centre - size / 2, centre + size / 2], axis=3)  # (V, P, F, 4)
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
        labels=labels,
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
            0.4 + 0.6 * rng.random((num_videos, n_p, n_f, 1)),
            0.4 * rng.random((num_videos, n_p, n_f, 2)),
        ],
        axis=3,
    )
    boxes = tracks + rng.normal(0, 2.0, size=tracks.shape)  # (V, P, F, 4)
    boxes = boxes.transpose(0, 2, 1, 3)  # (V, F, P, 4)
    classes = classes.transpose(0, 2, 1, 3)  # (V, F, P, 3)
    scores = scores.transpose(0, 2, 1, 3)  # (V, F, P, 3)
    count = num_videos * n_f * n_p * CLASSES_PER_BOX
    dets = np.empty((count, 8))
    grid = np.indices((num_videos, n_f, n_p, CLASSES_PER_BOX)).reshape(4, -1)  # (4, M)
    dets[:, 0] = grid[0]
    dets[:, 1] = grid[1] + 1
    dets[:, 2] = classes.reshape(-1)
    dets[:, 3] = scores.reshape(-1)
    dets[:, 4:8] = np.repeat(boxes.reshape(-1, 4), CLASSES_PER_BOX, axis=0)
    return gt, dets


def write_case(folder: str, videos: int) -> None:
    """Child process: write ``gt.pkl``, ``frame_detections.pkl`` and ``case.json``."""
    from pcca_plugin.utils.pickle_io import dump_pickle

    os.makedirs(folder, exist_ok=True)
    gt, dets = generate(videos)
    dump_pickle(gt, osp.join(folder, 'gt.pkl'))
    dump_pickle(dets, osp.join(folder, 'frame_detections.pkl'))
    with open(osp.join(folder, 'case.json'), 'w') as f:
        json.dump(dict(videos=videos, frame_detections=int(dets.shape[0])), f)


def _official_frame_ap_module():
    """mmaction2 1.2.0's ``multisports_utils`` loaded from its file, without importing mmaction."""
    spec = importlib.util.find_spec('mmaction')
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit('the official frameAP comes from mmaction2 1.2.0: pip install mmaction2')
    path = osp.join(
        spec.submodule_search_locations[0], 'evaluation', 'functional', 'multisports_utils.py'
    )
    module_spec = importlib.util.spec_from_file_location('official_multisports_utils', path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def run_official(folder: str) -> dict:
    """Child process: the official frameAP as the official script runs it (``pickle.load``)."""
    from mmengine.logging import MMLogger

    official = _official_frame_ap_module()
    MMLogger.get_instance('benchmark_eval')
    begin = time.perf_counter()
    with open(osp.join(folder, 'gt.pkl'), 'rb') as f:
        gt = pickle.load(f)
    with open(osp.join(folder, 'frame_detections.pkl'), 'rb') as f:
        dets = pickle.load(f)
    mean_ap = float(official.frameAP(gt, dets, 0.5, print_info=False))
    return dict(seconds=time.perf_counter() - begin, frame_mAP=mean_ap)


def _measure(command: list, env: dict) -> dict:
    """Run ``command``; its wall time and peak RSS (MiB) from ``os.wait4``."""
    begin = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - begin
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f'{" ".join(command)} failed with exit code {process.returncode}')
    return dict(wall_s=wall, peak_mib=usage.ru_maxrss / KIB_PER_MIB)  # Linux: KiB


def measure_all(folder: str) -> dict:
    """Both CLI commands and the official frameAP, each a fresh process."""
    env = dict(os.environ)
    cli = osp.join(REPO, 'tools', 'eval_multisports.py')
    gt, dets = osp.join(folder, 'gt.pkl'), osp.join(folder, 'frame_detections.pkl')
    rows = {}
    commands = {
        ROWS[0]: ['frameAP', gt, dets],
        ROWS[1]: ['link', gt, dets, '-o', osp.join(folder, 'video_detections.pkl')],
    }
    for name, arguments in commands.items():
        report = osp.join(folder, f'{arguments[0]}.json')
        command = [sys.executable, cli] + arguments + ['--no-progress', '--json', report]
        rows[name] = _measure(command, env)
        with open(report) as f:
            rows[name]['report'] = json.load(f)
        rows[name]['in_process_s'] = rows[name]['report']['seconds']
    first, second = rows[ROWS[0]], rows[ROWS[1]]
    rows[ROWS[2]] = dict(
        wall_s=first['wall_s'] + second['wall_s'],
        in_process_s=first['in_process_s'] + second['in_process_s'],
        peak_mib=max(first['peak_mib'], second['peak_mib']),
    )
    out = osp.join(folder, 'official.json')
    command = [sys.executable, __file__, '--child', 'official', '--out', folder]
    rows[ROWS[3]] = _measure(command, env)
    with open(out) as f:
        official = json.load(f)
    rows[ROWS[3]]['in_process_s'] = official['seconds']
    rows[ROWS[3]]['frame_mAP'] = official['frame_mAP']
    return rows


def format_table(rows: dict) -> str:
    """The markdown table of :data:`COLUMNS` x :data:`ROWS`."""
    lines = ['| ' + ' | '.join(COLUMNS) + ' |', '| --- | ---: | ---: | ---: |']
    for name in ROWS:
        row = rows[name]
        lines.append(
            f'| {name} | {row["wall_s"]:.2f} | {row["in_process_s"]:.2f} | {row["peak_mib"]:.0f} |'
        )
    return '\n'.join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        '--out', default='work_dirs/benchmark_eval', help='folder for the case and results'
    )
    parser.add_argument('--videos', type=int, default=NUM_VIDEOS, help='videos in the case')
    parser.add_argument(
        '--quick', action='store_true', help=f'a {QUICK_VIDEOS}-video case (for the tests)'
    )
    parser.add_argument('--child', choices=['official', 'generate'], help=argparse.SUPPRESS)
    args = parser.parse_args()
    videos = QUICK_VIDEOS if args.quick else args.videos
    if args.child == 'official':
        result = run_official(args.out)
        with open(osp.join(args.out, 'official.json'), 'w') as f:
            json.dump(result, f)
        return
    if args.child == 'generate':
        write_case(args.out, videos)
        return
    os.makedirs(args.out, exist_ok=True)
    print(f'generating {videos} videos x {FRAMES_PER_VIDEO} frames ...', flush=True)
    # In a child: a command's ru_maxrss includes this process's memory at spawn, kept small.
    generator = [sys.executable, __file__, '--child', 'generate', '--out', args.out]
    subprocess.run(generator + ['--videos', str(videos)], check=True)
    with open(osp.join(args.out, 'case.json')) as f:
        num_dets = json.load(f)['frame_detections']
    print(f'{num_dets} frame detections; running the commands ...', flush=True)
    rows = measure_all(args.out)
    table = format_table(rows)
    ours = rows[ROWS[0]]['report']['frameAP']['mAP']
    official = rows[ROWS[3]]['frame_mAP']
    pair = rows[ROWS[2]]
    report = dict(
        videos=videos,
        frames_per_video=FRAMES_PER_VIDEO,
        frame_detections=num_dets,
        numpy=np.__version__,
        cpus=os.cpu_count(),
        rows={name: {k: v for k, v in row.items() if k != 'report'} for name, row in rows.items()},
        frame_mAP=dict(ours=ours, official=official, identical=ours == official),
        table=table,
    )
    with open(osp.join(args.out, 'report.json'), 'w') as f:
        json.dump(report, f, indent=2)
    print(f'case: {videos} videos x {FRAMES_PER_VIDEO} frames, {num_dets} frame detections')
    print(table)
    print(f'frame-mAP@0.5: ours {ours!r}, official {official!r}, identical: {ours == official}')
    print(
        f'frameAP + link: {pair["wall_s"]:.2f} s wall (bar <= {TIME_BAR_S:g} s), peak RSS '
        f'{pair["peak_mib"]:.0f} MiB (bar <= {RSS_BAR_MIB:.0f} MiB)'
    )
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB_PER_MIB
    print(
        f'numpy {np.__version__}, {os.cpu_count()} CPUs; this script held {own:.0f} MiB when it '
        'started the commands (a floor of their peak RSS)'
    )


if __name__ == '__main__':
    main()
