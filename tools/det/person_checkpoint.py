"""Reduce a multi-class mmdet Faster R-CNN checkpoint (e.g. COCO) to a person-only one.

Keeps the ``person`` and background rows of the box classifier and the person
rows of the box regressor (see :func:`pcca_plugin.proposals.detector.
slice_person_checkpoint`); the result loads into the ``num_classes=1`` configs
of ``configs/det/`` for inference and fine-tuning.

Usage::

    python tools/det/person_checkpoint.py \\
        checkpoints/faster_rcnn_x101_64x4d_fpn_mstrain_3x_coco_20210524_124528-26c63de6.pth \\
        checkpoints/faster-rcnn_x101-64x4d-fpn_coco-person.pth
"""

import argparse
import os.path as osp
import sys
from typing import List, Optional

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import pcca_plugin  # noqa: E402,F401  (compatibility fixes: checkpoint loading on torch 2.6+)
from pcca_plugin.proposals.detector import DEFAULT_BBOX_HEAD_PREFIX, slice_person_checkpoint  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='multi-class checkpoint (e.g. mmdet COCO Faster R-CNN)')
    parser.add_argument('dst', help='person-only checkpoint to write')
    parser.add_argument(
        '--classes',
        nargs='+',
        default=None,
        help="class names when the checkpoint's meta lacks them; 'coco' for "
        "mmdet's 80 COCO classes",
    )
    parser.add_argument(
        '--bbox-head-prefix',
        default=DEFAULT_BBOX_HEAD_PREFIX,
        help='state-dict prefix of the box head (default %(default)s)',
    )
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    classes = args.classes
    if classes == ['coco']:
        from mmdet.evaluation import get_classes

        classes = get_classes('coco')
    meta = slice_person_checkpoint(
        args.src, args.dst, classes=classes, prefix=args.bbox_head_prefix
    )
    info = meta['person_only']
    print(
        f'{args.src}: kept class {info["source_person_index"]} (person) of '
        f'{info["source_classes"]} -> {args.dst}'
    )
    return meta


if __name__ == '__main__':
    main()
