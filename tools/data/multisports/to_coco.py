"""Convert MultiSports (or toy-sports) ground truth to COCO person annotations.

One COCO image per annotated frame of a split, one ``person`` annotation per
distinct tube box in it, so that mmdet trains and evaluates the person
detector with its stock ``CocoDataset`` / ``CocoMetric`` (see
``docs/detector.md``). Writes ``<out-dir>/<prefix>_train.json`` and
``<out-dir>/<prefix>_val.json`` (``val`` = the GT's ``test_videos``).

Usage::

    python tools/data/multisports/to_coco.py data/multisports/annotations/multisports_GT.pkl \\
        --out-dir data/multisports/annotations --frame-root data/multisports/rawframes \\
        --frame-interval 4
"""

import argparse
import json
import os
import os.path as osp
import sys
from typing import List, Optional

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from pcca_plugin.proposals.coco_format import DEFAULT_FILENAME_TMPL, multisports_to_coco  # noqa: E402
from pcca_plugin.proposals.ground_truth import split_videos  # noqa: E402
from pcca_plugin.utils.pickle_io import load_pickle  # noqa: E402

#: Output split name -> stem suffix of the json file.
SPLITS = ('train', 'val')
DEFAULT_PREFIX = 'multisports_person'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('gt', help='MultiSports GT pickle (e.g. multisports_GT.pkl)')
    parser.add_argument('--out-dir', required=True, help='folder for the json files')
    parser.add_argument(
        '--prefix',
        default=DEFAULT_PREFIX,
        help='json file names: <prefix>_train.json, <prefix>_val.json',
    )
    parser.add_argument('--splits', nargs='+', default=list(SPLITS), choices=SPLITS)
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
    return parser.parse_args(argv)


def check_images(coco: dict, frame_root: str, json_path: str) -> None:
    """Raise FileNotFoundError naming the first missing frame and how many are missing."""
    missing = [
        image['file_name']
        for image in coco['images']
        if not osp.isfile(osp.join(frame_root, image['file_name']))
    ]
    if missing:
        raise FileNotFoundError(
            f'{json_path}: {len(missing)} of {len(coco["images"])} frames are missing under '
            f'{frame_root}, e.g. {osp.join(frame_root, missing[0])}; extract the frames '
            '(img_00001.jpg, ...) or fix --frame-root / --filename-tmpl'
        )


def main(argv: Optional[List[str]] = None) -> List[str]:
    """Write the json files; returns their paths."""
    args = parse_args(argv)
    gt = load_pickle(args.gt)
    os.makedirs(args.out_dir, exist_ok=True)
    written = []
    for split in args.splits:
        videos = split_videos(gt, split, args.gt)
        coco, stats = multisports_to_coco(
            gt,
            videos,
            filename_tmpl=args.filename_tmpl,
            frame_interval=args.frame_interval,
            source=args.gt,
        )
        path = osp.join(args.out_dir, f'{args.prefix}_{split}.json')
        if args.frame_root is not None:
            check_images(coco, args.frame_root, path)
        tmp = path + '.tmp'
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(coco, f)
        os.replace(tmp, path)
        written.append(path)
        print(
            f'{split}: {stats["videos"]} videos, {stats["images"]} frames, '
            f'{stats["annotations"]} person boxes ({stats["dropped_empty_boxes"]} empty boxes '
            f'dropped) -> {path}'
        )
    return written


if __name__ == '__main__':
    main()
