"""Benchmark ``tools/eval_multisports.py`` on a MultiSports-sized case, with the official frameAP.

The case (555 videos x 750 frames, 9,990,000 frame detections) and what is
measured are described in :mod:`pcca_plugin.evaluation.benchmark`: the wall
time, in-process time and peak RSS of ``eval_multisports.py frameAP``,
``link`` and ``server2021`` and of the official frameAP, each a fresh process. The frame-mAP of
ours and of the official tool are printed side by side; under the same numpy
they are identical. ``--quick`` runs the same on a 3-video case (the test
suite runs it and checks the table's columns).

Usage::

    python tools/benchmark_eval.py --out work_dirs/benchmark_eval
    python tools/benchmark_eval.py --quick --out /tmp/benchmark_eval
"""

import argparse
import json
import os
import os.path as osp
import resource

from pcca_plugin.evaluation import benchmark
from pcca_plugin.utils.cli import add_debug_argument, run_cli

#: The command line measured: the sibling script of this one.
EVAL_CLI = osp.join(osp.dirname(osp.abspath(__file__)), 'eval_multisports.py')


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        '--out', default='work_dirs/benchmark_eval', help='folder for the case and results'
    )
    parser.add_argument(
        '--videos', type=int, default=benchmark.NUM_VIDEOS, help='videos in the case'
    )
    parser.add_argument(
        '--quick',
        action='store_true',
        help=f'a {benchmark.QUICK_VIDEOS}-video case (for the tests)',
    )
    args = add_debug_argument(parser).parse_args(argv)
    videos = benchmark.QUICK_VIDEOS if args.quick else args.videos
    print(f'generating {videos} videos x {benchmark.FRAMES_PER_VIDEO} frames ...', flush=True)
    num_dets = benchmark.generate_case(args.out, videos)
    print(f'{num_dets} frame detections; running the commands ...', flush=True)
    rows = benchmark.measure_all(args.out, EVAL_CLI)
    report = benchmark.summarise(rows, videos, num_dets)
    with open(osp.join(args.out, 'report.json'), 'w') as f:
        json.dump(report, f, indent=2)
    ours, official = report['frame_mAP']['ours'], report['frame_mAP']['official']
    pair = rows[benchmark.ROWS[2]]
    print(
        f'case: {videos} videos x {benchmark.FRAMES_PER_VIDEO} frames, {num_dets} frame detections'
    )
    print(report['table'])
    print(f'frame-mAP@0.5: ours {ours!r}, official {official!r}, identical: {ours == official}')
    print(
        f'frameAP + link: {pair["wall_s"]:.2f} s wall (bar <= {benchmark.TIME_BAR_S:g} s), peak '
        f'RSS {pair["peak_mib"]:.0f} MiB (bar <= {benchmark.RSS_BAR_MIB:.0f} MiB)'
    )
    server, bar = rows[benchmark.ROWS[4]], benchmark.SERVER2021_TIME_BAR_S
    print(
        f'server2021: {server["wall_s"]:.2f} s wall (bar <= {bar:g} s), '
        f'peak RSS {server["peak_mib"]:.0f} MiB (frameAP + link: {pair["peak_mib"]:.0f} MiB)'
    )
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / benchmark.KIB_PER_MIB
    print(
        f'numpy {report["numpy"]}, {os.cpu_count()} CPUs; this script held {own:.0f} MiB when '
        'it started the commands (a floor of their peak RSS)'
    )


if __name__ == '__main__':
    run_cli(main)
