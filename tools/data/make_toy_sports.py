"""Generate *toy-sports*: a tiny, seeded spatio-temporal action dataset in MultiSports format.

The generator is :mod:`pcca_plugin.datasets.toy_sports` (its docstring and
``docs/data.md`` describe the classes and the files written).

Usage::

    python tools/data/make_toy_sports.py data/toy_sports --seed 0
"""

import argparse
from typing import List, Optional

from pcca_plugin.datasets.toy_sports import (
    ToySportsSizes,
    make_toy_sports,
    write_clip_level_annotations,
)
from pcca_plugin.utils.cli import add_debug_argument, run_cli


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir', help='output folder, e.g. data/toy_sports')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-train-videos', type=int, default=ToySportsSizes.num_train_videos)
    parser.add_argument('--num-val-videos', type=int, default=ToySportsSizes.num_val_videos)
    parser.add_argument('--num-frames', type=int, default=ToySportsSizes.num_frames)
    parser.add_argument(
        '--clip-level',
        action='store_true',
        help='also write clip-level (whole-frame) training annotations for pretraining',
    )
    parser.add_argument(
        '--no-prepare',
        action='store_true',
        help='skip writing annotations/ with the preparation tool',
    )
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if args.clip_level and args.no_prepare:
        parser.error('--clip-level needs the annotations that --no-prepare skips')
    summary = make_toy_sports(
        args.out_dir,
        seed=args.seed,
        prepare=not args.no_prepare,
        num_train_videos=args.num_train_videos,
        num_val_videos=args.num_val_videos,
        num_frames=args.num_frames,
    )
    if args.clip_level:
        write_clip_level_annotations(args.out_dir)
    print(
        f'toy-sports: {summary["num_videos"]} videos, {summary["num_frames"]} frames in '
        f'{summary["seconds"]:.1f} s -> {args.out_dir}'
    )


if __name__ == '__main__':
    run_cli(main)
