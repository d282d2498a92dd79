"""Prepare MultiSports (or any MultiSports-format data) for pcca_plugin.

``--split trainval`` (default) writes, under ``--out-dir``, ``<name>_{train,val}.pkl``
(key frames, boxes and multi-hot labels; the val split lists every frame) and
``<name>_dense_proposals_{train,val}.pkl`` (validated person boxes per split).
Optionally checks every video and extracts raw frames.

``--split test`` builds the challenge test split, which has no GT, from the
videos alone: ``<name>_test.pkl`` (every frame of every video under
``--video-root`` is a key frame; frame count and resolution are decoded from
each video) and ``<name>_dense_proposals_test.pkl`` (the person boxes of
``--proposals``, e.g. ``tools/det/generate_proposals.py`` output).
See ``docs/data.md`` and ``docs/submission.md``.

Examples::

    python tools/data/multisports/prepare_multisports.py \\
        --gt data/multisports/annotations/multisports_GT.pkl \\
        --proposals data/multisports/annotations/MultiSports_box/*.pkl \\
        --out-dir data/multisports/annotations \\
        --video-root data/multisports/trainval --extract-frames data/multisports/rawframes

    python tools/data/multisports/prepare_multisports.py --split test \\
        --video-root data/multisports/test \\
        --proposals data/multisports/proposals/test.pkl \\
        --gt data/multisports/annotations/multisports_GT.pkl \\
        --out-dir data/multisports/annotations
"""

import argparse
from typing import List, Optional

from mmengine.logging import MMLogger

from pcca_plugin.datasets.preparation import (
    DEFAULT_DUPLICATE_IOU,
    TEST_SPLIT,
    TRAIN_FRAME_MODES,
    check_or_extract_videos,
    prepare_multisports,
    prepare_multisports_test,
)
from pcca_plugin.utils.cli import add_debug_argument, run_cli

#: --split choices: the GT's train and val splits together, or the test videos (no GT).
SPLITS = ('trainval', TEST_SPLIT)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        '--split',
        choices=SPLITS,
        default='trainval',
        help='trainval: train and val from the GT file; test: the test videos alone '
        '(default %(default)s)',
    )
    parser.add_argument(
        '--gt',
        help='multisports_GT.pkl (trainval: required; test: only its class names are read)',
    )
    parser.add_argument(
        '--proposals',
        nargs='+',
        required=True,
        help='person-box pickles {"<video>,<frame>": (n, 5)}',
    )
    parser.add_argument('--out-dir', required=True, help='where the annotation files go')
    parser.add_argument('--name', default='multisports', help='prefix of the output files')
    parser.add_argument(
        '--frame-stride',
        type=int,
        default=1,
        help='keep every k-th frame (validation and test: of all frames)',
    )
    parser.add_argument(
        '--train-frames',
        choices=TRAIN_FRAME_MODES,
        default='annotated',
        help='training key frames: annotated frames only, or all frames',
    )
    parser.add_argument(
        '--duplicate-iou',
        type=float,
        default=DEFAULT_DUPLICATE_IOU,
        help='boxes of two tubes on a frame with IoU >= this are one person',
    )
    parser.add_argument(
        '--video-root',
        help='folder of <sport>/<video>.mp4 (trainval: to check videos; test: required)',
    )
    parser.add_argument('--video-suffix', default='.mp4')
    parser.add_argument(
        '--video-list',
        help='test: text file of video names, one per line, in the order the submission '
        'indexes them (default: every video under --video-root, sorted)',
    )
    parser.add_argument(
        '--count-frames',
        action='store_true',
        help='trainval: decode every video and check its frame count against the GT '
        '(--extract-frames always does)',
    )
    parser.add_argument(
        '--extract-frames',
        metavar='FRAME_ROOT',
        help='also decode every video into FRAME_ROOT/<video>/img_00001.jpg',
    )
    args = add_debug_argument(parser).parse_args(argv)
    if args.split == TEST_SPLIT and not args.video_root:
        parser.error('--split test builds the split from the videos: give --video-root')
    if args.split != TEST_SPLIT and not args.gt:
        parser.error('--split trainval needs --gt (multisports_GT.pkl)')
    if args.video_list and args.split != TEST_SPLIT:
        parser.error('--video-list is for --split test (trainval takes the order of the GT)')
    if args.extract_frames and not args.video_root:
        parser.error('--extract-frames needs --video-root')
    return args


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the preparation; return ``{kind: path}`` of the written files."""
    args = parse_args(argv)
    logger = MMLogger.get_instance('prepare_multisports')
    if args.split == TEST_SPLIT:
        written = prepare_multisports_test(
            args.video_root,
            args.proposals,
            args.out_dir,
            name=args.name,
            video_suffix=args.video_suffix,
            video_list=args.video_list,
            labels_from=args.gt,
            frame_root=args.extract_frames,
            frame_stride=args.frame_stride,
            logger=logger,
        )
    else:
        if args.video_root:
            check_or_extract_videos(
                args.gt, args.video_root, args.video_suffix, args.extract_frames, args.count_frames
            )
        written = prepare_multisports(
            args.gt,
            args.proposals,
            args.out_dir,
            name=args.name,
            frame_stride=args.frame_stride,
            train_frames=args.train_frames,
            duplicate_iou=args.duplicate_iou,
            logger=logger,
        )
    for kind, path in written.items():
        logger.info(f'{kind}: {path}')
    return written


if __name__ == '__main__':
    run_cli(main)
