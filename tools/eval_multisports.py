"""Evaluate MultiSports detections from files, with the official command-line shape.

Usage::

    python tools/eval_multisports.py frameAP GT.pkl FRAME_DETS.pkl [-t 0.5]
    python tools/eval_multisports.py videoAP GT.pkl VIDEO_DETS.pkl [-t 0.5]
    python tools/eval_multisports.py videoAP_all GT.pkl VIDEO_DETS.pkl
    python tools/eval_multisports.py videoAP_error GT.pkl VIDEO_DETS.pkl [-t 0.5]
    python tools/eval_multisports.py link GT.pkl FRAME_DETS.pkl -o VIDEO_DETS.pkl

Options: ``--json OUT.json`` writes every figure (overall and per class);
``--plot DIR`` writes a per-class AP bar chart and PR curves as PNG;
``--tie-order stable`` ranks tied scores in input order (the same figures on
every machine) instead of numpy's default sort as the official tool does
(``docs/protocol.md``, "Tied scores"). Pickles are read with a restricted
unpickler (numpy arrays and builtin containers only) and written readable by
numpy 1.x and 2.x; frame detections may also be an ``(M, 8)`` ``.npy`` file,
which is memory-mapped.

Only numpy (and matplotlib for ``--plot``) is imported: no torch and no
OpenMMLab package, so a run costs its evaluation, not imports.
"""

import argparse
import json
import os
import os.path as osp
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from pcca_plugin.evaluation.functional import (  # noqa: E402
    ERROR_COLUMNS,
    MIN_TUBE_LENGTH,
    MIN_TUBE_SCORE,
    TIE_ORDERS,
    VIDEO_IOU_RANGES,
    VideoAPEvaluator,
    frame_ap,
    link_tubes,
    load_ground_truth,
    video_ap_error,
)
from pcca_plugin.evaluation.functional.video_ap import ERROR_TITLES  # noqa: E402
from pcca_plugin.utils.pickle_io import dump_pickle  # noqa: E402

TASKS = ('frameAP', 'videoAP', 'videoAP_all', 'videoAP_error', 'link')
#: Width of the class-name column in printed tables.
NAME_WIDTH = 30


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('task', choices=TASKS, help='what to compute')
    parser.add_argument('groundtruth', help='multisports_GT.pkl')
    parser.add_argument(
        'detections', help='frame_detections.pkl (frameAP, link) or video_detections.pkl'
    )
    parser.add_argument('-t', '--thr', type=float, default=0.5, help='IoU threshold (default 0.5)')
    parser.add_argument('-o', '--out', help='link: where to write video_detections.pkl')
    parser.add_argument(
        '--len-thr', type=int, default=MIN_TUBE_LENGTH, help='link: minimum tube length'
    )
    parser.add_argument(
        '--score-thr', type=float, default=MIN_TUBE_SCORE, help='link: minimum tube score'
    )
    parser.add_argument(
        '--json',
        help='write every figure (overall and per class) and the time spent to this JSON file',
    )
    parser.add_argument(
        '--plot', help='write per-class AP bars and PR curves (PNG) into this folder'
    )
    parser.add_argument(
        '--tie-order',
        choices=TIE_ORDERS,
        default='official',
        help="official: rank tied scores with numpy's default argsort, as the official tool "
        '(figures then match it under the same numpy build); stable: ties in input order, '
        'the same figures on every machine',
    )
    parser.add_argument('--no-progress', action='store_true', help='hide progress bars')
    args = parser.parse_args(argv)
    if args.task == 'link' and not args.out:
        parser.error('link needs -o VIDEO_DETS.pkl')
    return args


def print_table(title: str, rows: dict, mean: float) -> None:
    print(title)
    for name, value in rows.items():
        print(f'{name:{NAME_WIDTH}s} {value:8.2f}')
    print(f'{"mAP":{NAME_WIDTH}s} {mean:8.2f}')


def plot_results(folder: str, title: str, result) -> list:
    """Per-class AP bars and (when kept) PR curves; returns the written files."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    os.makedirs(folder, exist_ok=True)
    written = []
    names = list(result.per_class)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.25 * len(names) + 2), 4.5))
    ax.bar(range(len(names)), [result.per_class[n] for n in names], color='tab:blue')
    ax.axhline(result.mean_ap, color='tab:red', linestyle='--', label=f'mean {result.mean_ap:.2f}')
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=90, fontsize=7)
    ax.set_ylabel('AP (%)')
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path = osp.join(folder, f'{title.replace(" ", "_").replace("@", "_")}_per_class_ap.png')
    fig.savefig(path, dpi=120)
    plt.close(fig)
    written.append(path)
    if result.pr:
        fig, ax = plt.subplots(figsize=(6, 5))
        for name, (precision, recall) in result.pr.items():
            ax.plot(recall, precision, linewidth=0.8, label=name)
        ax.set_xlabel('recall')
        ax.set_ylabel('precision')
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_title(f'{title}: precision-recall per class')
        if len(result.pr) <= 12:
            ax.legend(fontsize=6)
        fig.tight_layout()
        path = osp.join(folder, f'{title.replace(" ", "_").replace("@", "_")}_pr_curves.png')
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def main(argv=None) -> dict:
    """Run one task; returns the report (also written with ``--json``).

    The report's ``seconds`` is the time spent in this function: reading the
    files, evaluating, writing the outputs (not the interpreter start or the
    imports).
    """
    begin = time.perf_counter()
    args = parse_args(argv)
    progress = not args.no_progress
    gt = load_ground_truth(args.groundtruth)
    report = dict(
        task=args.task,
        groundtruth=args.groundtruth,
        detections=args.detections,
        tie_order=args.tie_order,
    )
    plots = []
    ties = args.tie_order
    keep_pr = bool(args.plot)  # the PR arrays of 10 M detections would double the memory
    if args.task == 'frameAP':
        result = frame_ap(gt, args.detections, args.thr, keep_pr, progress, ties)
        print_table(f'frameAP_{args.thr}\n', result.per_class, result.mean_ap)
        report['frameAP'] = result.to_dict()
        if args.plot:
            plots += plot_results(args.plot, f'frame AP@{args.thr:g}', result)
    elif args.task == 'videoAP':
        result = VideoAPEvaluator(gt, args.detections, progress, ties).ap(args.thr, keep_pr)
        print_table(f'VideoAP_{args.thr}\n', result.per_class, result.mean_ap)
        report['videoAP'] = result.to_dict()
        if args.plot:
            plots += plot_results(args.plot, f'video AP@{args.thr:g}', result)
    elif args.task == 'videoAP_all':
        evaluator = VideoAPEvaluator(gt, args.detections, progress, ties)
        report['videoAP_all'] = {}
        for name in VIDEO_IOU_RANGES:
            report['videoAP_all'][name] = evaluator.range_map(name)
            print(f'\nVideoAP_{name}: {report["videoAP_all"][name]:8.2f} \n')
        per_threshold = {}
        for name in VIDEO_IOU_RANGES:
            first, step, count = VIDEO_IOU_RANGES[name]
            for i in range(count):
                thr = first + step * i
                per_threshold[f'{thr:.2f}'] = evaluator.ap(thr).to_dict()
        report['per_threshold'] = per_threshold
        if args.plot:
            main_range = evaluator.ap(0.5, keep_pr=True)
            plots += plot_results(args.plot, 'video AP@0.5', main_range)
    elif args.task == 'videoAP_error':
        result = video_ap_error(gt, args.detections, args.thr, progress, ties)
        print('Error Analysis\n')
        print(
            f'{"label":{NAME_WIDTH}s} ' + ' '.join(f'{ERROR_TITLES[c]:>9s}' for c in ERROR_COLUMNS)
        )
        for name, row in result['per_class'].items():
            print(f'{name:{NAME_WIDTH}s} ' + ' '.join(f'{row[c]:9.2f}' for c in ERROR_COLUMNS))
        print(
            f'{"mean":{NAME_WIDTH}s} '
            + ' '.join(f'{result["mean"][c]:9.2f}' for c in ERROR_COLUMNS)
        )
        report['videoAP_error'] = result
    else:  # link
        tubes = link_tubes(
            gt, args.detections, args.len_thr, args.score_thr, progress=progress, tie_order=ties
        )
        dump_pickle(tubes, args.out)
        count = sum(len(v) for v in tubes.values())
        print(f'{count} tubes written to {args.out}')
        report['link'] = dict(
            out=args.out, num_tubes=count, len_thr=args.len_thr, score_thr=args.score_thr
        )
    if plots:
        report['plots'] = plots
        print('plots: ' + ', '.join(plots))
    report['seconds'] = time.perf_counter() - begin
    if args.json:
        folder = osp.dirname(osp.abspath(args.json))
        os.makedirs(folder, exist_ok=True)
        partial = f'{args.json}.partial'
        with open(partial, 'w') as f:
            json.dump(report, f, indent=2)
        os.replace(partial, args.json)  # never a half-written report
    return report


if __name__ == '__main__':
    main()
