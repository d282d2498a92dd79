"""Plot training curves of mmengine runs: loss, lr and every validation metric, per epoch.

Usage::

    python tools/plot_curves.py WORK_DIR [WORK_DIR ...] [--out curves.png] [--labels A B ...]

The reader and the plots are :mod:`pcca_plugin.visualization.training_curves`
(``--help`` shows what it reads).
"""

import argparse
from typing import List, Optional

from pcca_plugin.utils.cli import add_debug_argument, run_cli
from pcca_plugin.visualization import training_curves
from pcca_plugin.visualization.training_curves import (
    RunCurves,
    load_run,
    plot_curves,
    unique_labels,
)


def main(argv: Optional[List[str]] = None) -> List[RunCurves]:
    parser = argparse.ArgumentParser(
        description=training_curves.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument('work_dirs', nargs='+', metavar='WORK_DIR', help="runs' work dirs")
    parser.add_argument('--out', default='curves.png', help='PNG to write (default: curves.png)')
    parser.add_argument('--labels', nargs='+', help='one name per WORK_DIR (default: folder names)')
    parser.add_argument('--title', help='figure title')
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if args.labels and len(args.labels) != len(args.work_dirs):
        parser.error(f'--labels: {len(args.labels)} names for {len(args.work_dirs)} WORK_DIRs')
    labels = args.labels or unique_labels(args.work_dirs)
    runs = [load_run(work_dir, label) for work_dir, label in zip(args.work_dirs, labels)]
    panels = plot_curves(runs, args.out, args.title)
    for run in runs:
        points = sum(len(x) for x, _ in run.train.values())
        print(
            f'{run.label}: {len(run.files)} scalars.json, {points} training points, '
            f'{len(run.val)} validation metrics (x: {run.x_unit})'
        )
    print(f'{args.out}: {len(panels)} panels ({", ".join(panels)})')
    return runs


if __name__ == '__main__':
    run_cli(main)
