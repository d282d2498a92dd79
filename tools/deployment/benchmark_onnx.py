"""onnxruntime against PyTorch eager, seconds per clip on the CPU, at both MultiSports scales.

Usage::

    python tools/deployment/benchmark_onnx.py [--config CONFIG] \\
        [--input-sizes 256x455 360x640] [--num-boxes 8] [--repeats 5] [--threads N] [--quick]

Exports the config's detector (random weights) at each input size and times
one clip with N boxes in both backends (medians, same thread count), printed
as a Markdown table with the ratio. ``--quick``: the tiny toy-sports PCCA
detector, one timed run each (a smoke test). See docs/deployment.md.
"""

import argparse
import os
import tempfile
from typing import List, Optional

import pcca_plugin
from pcca_plugin.utils.cli import add_debug_argument, run_cli

#: The paper's PCCA config (SlowFast-R101, MultiSports), timed by default.
FULL_CONFIG = 'configs/pcca/pcca_slowfast-r101-k400-pre_8xb4-8x8x1-12e_multisports-rgb-256x455.py'
QUICK_CONFIG = 'configs/pcca/pcca_slowfast-tiny_1xb8-8x1x1-5e_toy-sports-rgb.py'
QUICK_REPEATS, QUICK_WARMUP = 1, 0


def input_size(text: str):
    height, _, width = text.partition('x')
    if not (height.isdigit() and width.isdigit()):
        raise argparse.ArgumentTypeError(f'{text!r}: give an input size as HxW, e.g. 256x455')
    return int(height), int(width)


def main(argv: Optional[List[str]] = None) -> None:
    from pcca_plugin.deployment import benchmark
    from pcca_plugin.utils.checkout import repo_path

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--config', help=f'default: {FULL_CONFIG} ({QUICK_CONFIG} with --quick)')
    parser.add_argument('--input-sizes', type=input_size, nargs='+', default=None,
                        help='HxW of each timing (default: 256x455 360x640)')  # fmt: skip
    parser.add_argument('--num-boxes', type=int, default=benchmark.DEFAULT_NUM_BOXES)
    parser.add_argument('--repeats', type=int, default=benchmark.DEFAULT_REPEATS)
    parser.add_argument('--warmup', type=int, default=benchmark.DEFAULT_WARMUP)
    parser.add_argument('--threads', type=int, help='CPU threads of both (default: all cores)')
    parser.add_argument('--work-dir', help='keep the exported files here (default: a temp dir)')
    parser.add_argument('--quick', action='store_true', help='tiny detector, one timed run')
    args = add_debug_argument(parser).parse_args(argv)
    config = args.config or repo_path(QUICK_CONFIG if args.quick else FULL_CONFIG)
    sizes = args.input_sizes or [(256, 455), (360, 640)]
    repeats, warmup = (QUICK_REPEATS, QUICK_WARMUP) if args.quick else (args.repeats, args.warmup)
    pcca_plugin.register_all_modules()
    with tempfile.TemporaryDirectory() as scratch:
        work_dir = args.work_dir or scratch
        os.makedirs(work_dir, exist_ok=True)
        rows = benchmark.benchmark_onnx(
            config, sizes, work_dir, args.num_boxes, repeats, warmup, args.threads
        )
    threads = args.threads or os.cpu_count()
    print(f'{config}: random weights, {threads} CPU threads, medians of {repeats} runs')
    print(benchmark.format_rows(rows))


if __name__ == '__main__':
    run_cli(main)
