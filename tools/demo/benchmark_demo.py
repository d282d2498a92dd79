"""Throughput of the video demo (frames per second) on a generated video, CPU threads fixed.

Runs the video demo end to end with random weights on a generated 16:9 video
with two moving persons in every frame, for each config, and prints a
Markdown table (the table of ``docs/inference.md``), preceded by the machine,
the date and the load; :mod:`pcca_plugin.demo.benchmark` does the work.

Usage::

    python tools/demo/benchmark_demo.py [--threads 2] [--json OUT.json]
        [--video-size 360x640] [--configs CONFIG[:SHORT_SIDE[:FRAMES]] ...]
    python tools/demo/benchmark_demo.py --quick   # seconds: the tiny config, 8 small frames

``--video-size 96x192 --configs CONFIG:96:FRAMES`` measures toy-sports' native
frame size.
"""

import argparse
import os
from typing import Dict, List, Optional

import pcca_plugin
from pcca_plugin.demo.benchmark import (
    DEFAULT_FRAMES,
    DEFAULT_SHORT_SIDE,
    DEFAULT_THREADS,
    QUICK_CONFIGS,
    QUICK_THREADS,
    QUICK_VIDEO_SIZE,
    VIDEO_SIZE,
    parse_size,
    run_benchmarks,
)
from pcca_plugin.utils.cli import add_debug_argument, run_cli
from pcca_plugin.visualization.video_demo import DEFAULT_BATCH_SIZE


def main(argv: Optional[List[str]] = None) -> List[Dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--threads', type=int, default=None, help=f'torch/OpenCV CPU threads ({DEFAULT_THREADS})'
    )
    parser.add_argument(
        '--configs',
        nargs='+',
        default=None,
        help='CONFIG[:SHORT_SIDE[:FRAMES]] (default: the two configs of docs/inference.md, '
        f'short side {DEFAULT_SHORT_SIDE}, {DEFAULT_FRAMES} frames unless given)',
    )
    parser.add_argument(
        '--video-size', type=parse_size, default=None, help=f'HxW of the video ({VIDEO_SIZE})'
    )
    parser.add_argument('--batch-size', type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument('--json', help='write the figures here')
    parser.add_argument(
        '--quick',
        action='store_true',
        help=f'a check that the benchmark runs: {QUICK_CONFIGS[0]} on {QUICK_VIDEO_SIZE} '
        f'frames, {QUICK_THREADS} thread (options given explicitly still apply)',
    )
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    pcca_plugin.register_all_modules()
    return run_benchmarks(
        configs=args.configs,
        video_size=args.video_size,
        threads=args.threads,
        batch_size=args.batch_size,
        json_file=args.json,
        quick=args.quick,
    )


if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', str(DEFAULT_THREADS))
    run_cli(main)
