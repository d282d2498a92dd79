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
from typing import List, Optional

import pcca_plugin
from pcca_plugin.proposals.detector import DEFAULT_BBOX_HEAD_PREFIX, slice_person_checkpoint
from pcca_plugin.utils.cli import add_debug_argument, run_cli

#: ``--classes`` value that stands for mmdet's 80 COCO class names.
COCO_CLASSES = 'coco'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='multi-class checkpoint (e.g. mmdet COCO Faster R-CNN)')
    parser.add_argument('dst', help='person-only checkpoint to write')
    parser.add_argument(
        '--classes',
        nargs='+',
        default=None,
        help=f"class names when the checkpoint's meta lacks them; '{COCO_CLASSES}' for "
        "mmdet's 80 COCO classes",
    )
    parser.add_argument(
        '--bbox-head-prefix',
        default=DEFAULT_BBOX_HEAD_PREFIX,
        help='state-dict prefix of the box head (default %(default)s)',
    )
    return add_debug_argument(parser).parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    pcca_plugin.register_all_modules()  # the compat fixes: checkpoint loading on torch 2.6+
    classes = args.classes
    if classes == [COCO_CLASSES]:
        from mmdet.evaluation import get_classes

        classes = get_classes(COCO_CLASSES)
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
    run_cli(main)
