"""Benchmark the MultiSports evaluator against mmaction2 1.2.0's port on a MultiSports-sized case.

The synthetic case mirrors the MultiSports validation set: 555 videos x 750
frames, 8 person tracks per video, every person box scored for its 3 best
of 66 classes (about 10 million frame detections), about 12 GT tubes per
video following the persons.

Stages timed, for ours (whole case, ``--repeats`` runs, medians) and for
mmaction2's ``frameAP`` / ``link_tubes`` / ``videoAP`` (a subset of videos,
extrapolated linearly to the whole case because a full run takes hours):
frame-mAP@0.5, linking, video-mAP at 0.2 and 0.5 and over 0.1:0.9. Ours runs
in a child process so that its peak memory (``ru_maxrss``) covers exactly
loading the detections and evaluating them.

mmaction2 1.2.0's ``iou3dt_voc`` calls ``int()`` on a one-element array,
which numpy 2 rejects; for timing it is replaced by the same function
indexing ``[0]`` (the only change). Its ``link_tubes`` stores a stale score
per box (a known defect), so only its time is compared, not its tubes.

Usage::

    python tools/benchmark_eval.py --out work_dirs/bench [--videos 555] [--repeats 3]
"""

import argparse
import json
import os
import os.path as osp
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

import pcca_plugin  # noqa: E402,F401  (compatibility fixes before any mmaction import)

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
STAGES = ('frame_mAP@0.5', 'linking', 'video_mAP@0.2', 'video_mAP@0.5', 'video_mAP@0.1:0.9')


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


def run_ours(folder: str, repeats: int) -> dict:
    """Child process: load the case and time our stages."""
    from pcca_plugin.evaluation.functional import VideoAPEvaluator, frame_ap, link_tubes
    from pcca_plugin.evaluation.functional.ground_truth import GroundTruth
    from pcca_plugin.utils.pickle_io import load_pickle

    times = {stage: [] for stage in STAGES + ('total',)}
    figures = {}
    for _ in range(repeats):
        begin = time.perf_counter()
        gt = GroundTruth.from_dict(load_pickle(osp.join(folder, 'gt.pkl')))
        dets = np.load(osp.join(folder, 'frame_dets.npy'))
        load_time = time.perf_counter() - begin
        t0 = time.perf_counter()
        figures['frame_mAP@0.5'] = frame_ap(gt, dets, 0.5).mean_ap
        t1 = time.perf_counter()
        tubes = link_tubes(gt, dets)
        t2 = time.perf_counter()
        evaluator = VideoAPEvaluator(gt, tubes)
        prep = time.perf_counter() - t2
        t3 = time.perf_counter()
        figures['video_mAP@0.2'] = evaluator.ap(0.2).mean_ap
        t4 = time.perf_counter()
        figures['video_mAP@0.5'] = evaluator.ap(0.5).mean_ap
        t5 = time.perf_counter()
        figures['video_mAP@0.1:0.9'] = evaluator.range_map('0.10:0.90')
        t6 = time.perf_counter()
        times['frame_mAP@0.5'].append(t1 - t0)
        times['linking'].append(t2 - t1)
        # The ST-IoU computation is shared by all thresholds; it is charged to video-mAP@0.2.
        times['video_mAP@0.2'].append(prep + t4 - t3)
        times['video_mAP@0.5'].append(t5 - t4)
        times['video_mAP@0.1:0.9'].append(t6 - t5)
        times['total'].append(load_time + t6 - t0)
        figures['num_tubes'] = int(sum(len(v) for v in tubes.values()))
        del dets, tubes, evaluator
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB -> MiB
    return dict(
        times=times,
        figures=figures,
        peak_mib=peak,
        num_dets=int(np.load(osp.join(folder, 'frame_dets.npy'), mmap_mode='r').shape[0]),
    )


def _fixed_iou3dt(multisports_utils):
    """mmaction2's iou3dt_voc with ``[0]`` added so that numpy 2 accepts it (timing only)."""

    def iou3dt_voc(b1, b2, spatialonly=False, temporalonly=False):
        tmin = max(b1[0, 0], b2[0, 0])
        tmax = min(b1[-1, 0], b2[-1, 0])
        if tmax < tmin:
            return 0.0
        inter = tmax - tmin
        union = max(b1[-1, 0], b2[-1, 0]) - min(b1[0, 0], b2[0, 0])
        first1, last1 = np.where(b1[:, 0] == tmin)[0][0], np.where(b1[:, 0] == tmax)[0][0]
        first2, last2 = np.where(b2[:, 0] == tmin)[0][0], np.where(b2[:, 0] == tmax)[0][0]
        if temporalonly:
            return inter / union
        spatial = multisports_utils.iou3d_voc(b1[first1 : last1 + 1], b2[first2 : last2 + 1])
        return spatial * (1.0 if spatialonly else inter / union)

    return iou3dt_voc


def run_mmaction(folder: str, num_videos: int) -> dict:
    """Child process: mmaction2's functions on the first ``num_videos`` videos, and ours on them."""
    from mmaction.evaluation.functional import multisports_utils as mu
    from mmengine.logging import MMLogger

    from pcca_plugin.evaluation.functional import VideoAPEvaluator, frame_ap, link_tubes
    from pcca_plugin.utils.pickle_io import load_pickle

    MMLogger.get_instance('benchmark_eval')
    mu.iou3dt_voc = _fixed_iou3dt(mu)
    gt = load_pickle(osp.join(folder, 'gt.pkl'))
    dets = np.load(osp.join(folder, 'frame_dets.npy'))
    total_dets = dets.shape[0]
    videos = gt['test_videos'][0][:num_videos]
    gt['test_videos'] = [videos]
    dets = dets[dets[:, 0] < num_videos]
    times, figures = {}, {}
    t0 = time.perf_counter()
    figures['mm_frame_mAP@0.5'] = float(mu.frameAP(gt, dets, 0.5, print_info=False))
    t1 = time.perf_counter()
    mm_tubes = mu.link_tubes(gt, dets, len_thre=15)
    t2 = time.perf_counter()
    ours_tubes = link_tubes(gt, dets)
    # Score the same tubes (ours) with both, so that the figures can be compared.
    t3 = time.perf_counter()
    figures['mm_video_mAP@0.2'] = float(mu.videoAP(gt, ours_tubes, 0.2, print_info=False))
    t4 = time.perf_counter()
    figures['mm_video_mAP@0.5'] = float(mu.videoAP(gt, ours_tubes, 0.5, print_info=False))
    t5 = time.perf_counter()
    total = 0
    for i in range(9):
        total += mu.videoAP(gt, ours_tubes, 0.1 + 0.1 * i, print_info=False)
    figures['mm_video_mAP@0.1:0.9'] = float(total / 9.0)
    t6 = time.perf_counter()
    times = {
        'frame_mAP@0.5': t1 - t0,
        'linking': t2 - t1,
        'video_mAP@0.2': t4 - t3,
        'video_mAP@0.5': t5 - t4,
        'video_mAP@0.1:0.9': t6 - t5,
    }
    evaluator = VideoAPEvaluator(gt, ours_tubes)
    figures['ours_frame_mAP@0.5'] = frame_ap(gt, dets, 0.5).mean_ap
    figures['ours_video_mAP@0.2'] = evaluator.ap(0.2).mean_ap
    figures['ours_video_mAP@0.5'] = evaluator.ap(0.5).mean_ap
    figures['ours_video_mAP@0.1:0.9'] = evaluator.range_map('0.10:0.90')
    figures['mm_num_tubes'] = int(sum(len(v) for v in mm_tubes.values()))
    return dict(
        times=times,
        figures=figures,
        subset_videos=num_videos,
        subset_dets=int(dets.shape[0]),
        total_dets=total_dets,
    )


def _child(mode: str, folder: str, arg: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS='2', OPENBLAS_NUM_THREADS='2', MKL_NUM_THREADS='2')
    out = osp.join(folder, f'{mode}.json')
    subprocess.run(
        [sys.executable, __file__, '--child', mode, '--out', folder, '--child-arg', str(arg)],
        check=True,
        env=env,
    )
    with open(out) as f:
        return json.load(f)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        '--out', default='work_dirs/benchmark_eval', help='folder for the case and results'
    )
    parser.add_argument('--videos', type=int, default=NUM_VIDEOS, help='videos in the case')
    parser.add_argument('--repeats', type=int, default=3, help='runs of ours (medians reported)')
    parser.add_argument(
        '--mm-videos', type=int, default=8, help='videos for mmaction2 (extrapolated)'
    )
    parser.add_argument('--skip-mmaction', action='store_true', help='time ours only')
    parser.add_argument('--child', choices=['ours', 'mmaction'], help=argparse.SUPPRESS)
    parser.add_argument('--child-arg', type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = (
            run_ours(args.out, args.child_arg)
            if args.child == 'ours'
            else run_mmaction(args.out, args.child_arg)
        )
        with open(osp.join(args.out, f'{args.child}.json'), 'w') as f:
            json.dump(result, f, indent=2)
        return
    from pcca_plugin.utils.pickle_io import dump_pickle

    os.makedirs(args.out, exist_ok=True)
    print(f'generating {args.videos} videos x {FRAMES_PER_VIDEO} frames ...', flush=True)
    gt, dets = generate(args.videos)
    dump_pickle(gt, osp.join(args.out, 'gt.pkl'))
    np.save(osp.join(args.out, 'frame_dets.npy'), dets)
    print(f'{dets.shape[0]} frame detections; timing ours ({args.repeats} runs) ...', flush=True)
    del gt, dets
    ours = _child('ours', args.out, args.repeats)
    report = dict(ours=ours, videos=args.videos)
    if not args.skip_mmaction:
        print(f'timing mmaction2 1.2.0 on {args.mm_videos} videos ...', flush=True)
        mm = _child('mmaction', args.out, args.mm_videos)
        report['mmaction'] = mm
    lines = [
        '| stage | ours, median s | mmaction2 1.2.0, s (extrapolated) | speed-up |',
        '| --- | ---: | ---: | ---: |',
    ]
    ours_total = 0.0
    mm_total = 0.0
    for stage in STAGES:
        ours_s = statistics.median(ours['times'][stage])
        ours_total += ours_s
        cell, ratio = 'n/a', 'n/a'
        if 'mmaction' in report:
            mm = report['mmaction']
            scale = (
                mm['total_dets'] / mm['subset_dets']
                if stage == 'frame_mAP@0.5'
                else args.videos / mm['subset_videos']
            )
            mm_s = mm['times'][stage] * scale
            mm_total += mm_s
            cell, ratio = f'{mm_s:.1f}', f'{mm_s / ours_s:.0f}x'
        lines.append(f'| {stage} | {ours_s:.2f} | {cell} | {ratio} |')
    total_ratio = f'{mm_total / ours_total:.0f}x' if mm_total else 'n/a'
    lines.append(
        f'| **all stages** | **{ours_total:.2f}** | **{mm_total:.1f}** | **{total_ratio}** |'
    )
    end_to_end = statistics.median(ours['times']['total'])
    lines.append(f'| end to end incl. loading (median) | {end_to_end:.2f} | | |')
    report['table'] = '\n'.join(lines)
    with open(osp.join(args.out, 'report.json'), 'w') as f:
        json.dump(report, f, indent=2)
    print(report['table'])
    print(f'peak memory (ours, whole child process): {ours["peak_mib"]:.0f} MiB')
    print(f'figures (ours, whole case): {ours["figures"]}')
    if 'mmaction' in report:
        print(f'subset figures (mmaction2 vs ours): {report["mmaction"]["figures"]}')


if __name__ == '__main__':
    main()
