"""Convert MultiSports (or toy-sports) ground truth to COCO person annotations.

One COCO image per annotated frame of a split, one ``person`` annotation per
distinct tube box in it, so that mmdet trains and evaluates the person
detector with its stock ``CocoDataset`` / ``CocoMetric`` (see
``docs/detector.md``). Writes ``<out-dir>/<prefix>_train.json`` and
``<out-dir>/<prefix>_val.json`` (``val`` = the GT's ``test_videos``); the
conversion is :func:`pcca_plugin.proposals.write_coco_files`.

Usage::

    python tools/data/multisports/to_coco.py data/multisports/annotations/multisports_GT.pkl \\
        --out-dir data/multisports/annotations --frame-root data/multisports/rawframes \\
        --frame-interval 4
"""

import argparse
from typing import List, Optional

from pcca_plugin.proposals.coco_format import (
    COCO_SPLITS,
    DEFAULT_COCO_PREFIX,
    DEFAULT_FILENAME_TMPL,
    write_coco_files,
)
from pcca_plugin.utils.cli import add_debug_argument, run_cli


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('gt', help='MultiSports GT pickle (e.g. multisports_GT.pkl)')
    parser.add_argument('--out-dir', required=True, help='folder for the json files')
    parser.add_argument(
        '--prefix',
        default=DEFAULT_COCO_PREFIX,
        help='json file names: <prefix>_train.json, <prefix>_val.json',
    )
    parser.add_argument('--splits', nargs='+', default=list(COCO_SPLITS), choices=COCO_SPLITS)
    parser.add_argument(
        '--frame-interval',
        type=int,
        default=1,
        help='keep annotated frames f with (f - 1) %% k == 0 (default: all)',
    )
    parser.add_argument(
        '--filename-tmpl',
        default=DEFAULT_FILENAME_TMPL,
        help='frame file name inside <video_name>/ (default: %(default)s)',
    )
    parser.add_argument(
        '--frame-root',
        default=None,
        help='if given, check that every image exists under this folder',
    )
    return add_debug_argument(parser).parse_args(argv)


def main(argv: Optional[List[str]] = None) -> List[str]:
    """Write the json files; returns their paths."""
    args = parse_args(argv)
    written = write_coco_files(
        args.gt,
        args.out_dir,
        prefix=args.prefix,
        splits=args.splits,
        frame_interval=args.frame_interval,
        filename_tmpl=args.filename_tmpl,
        frame_root=args.frame_root,
    )
    for split, (path, stats) in written.items():
        print(
            f'{split}: {stats["videos"]} videos, {stats["images"]} frames, '
            f'{stats["annotations"]} person boxes ({stats["dropped_empty_boxes"]} empty boxes '
            f'dropped) -> {path}'
        )
    return [path for path, _ in written.values()]


if __name__ == '__main__':
    run_cli(main)
