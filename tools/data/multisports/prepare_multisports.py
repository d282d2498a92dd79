"""Prepare MultiSports (or any MultiSports-format data) for pcca_plugin.

Writes, under ``--out-dir``, ``<name>_{train,val}.pkl`` (key frames, boxes and
multi-hot labels; the val split lists every frame) and
``<name>_dense_proposals_{train,val}.pkl`` (validated person boxes per split).
Optionally checks every video and extracts raw frames. See ``docs/data.md``.

Example::

    python tools/data/multisports/prepare_multisports.py \\
        --gt data/multisports/annotations/multisports_GT.pkl \\
        --proposals data/multisports/annotations/MultiSports_box/*.pkl \\
        --out-dir data/multisports/annotations \\
        --video-root data/multisports/trainval --extract-frames data/multisports/rawframes
"""

import argparse
import os.path as osp
from typing import List, Optional

from mmengine.logging import MMLogger
from mmengine.utils import track_iter_progress

from pcca_plugin.datasets.preparation import (
    DEFAULT_DUPLICATE_IOU,
    SPLIT_GT_FIELDS,
    TRAIN_FRAME_MODES,
    extract_frames,
    prepare_multisports,
    split_video_names,
)
from pcca_plugin.utils.pickle_io import load_pickle


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Prepare MultiSports-format data.')
    parser.add_argument('--gt', required=True, help='multisports_GT.pkl')
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
        help='keep every k-th frame (validation: of all frames)',
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
    parser.add_argument('--video-root', help='folder of <sport>/<video>.mp4, to check videos')
    parser.add_argument('--video-suffix', default='.mp4')
    parser.add_argument(
        '--extract-frames',
        metavar='FRAME_ROOT',
        help='also decode every video into FRAME_ROOT/<video>/img_00001.jpg',
    )
    return parser.parse_args(argv)


def check_or_extract_videos(
    gt_file: str, video_root: str, video_suffix: str, frame_root: Optional[str]
) -> None:
    """Check that every GT video exists (and extract its frames when asked)."""
    gt = load_pickle(gt_file)
    videos = [v for split in SPLIT_GT_FIELDS for v in split_video_names(gt, split, gt_file)]
    missing = [v for v in videos if not osp.isfile(osp.join(video_root, v + video_suffix))]
    if missing:
        raise FileNotFoundError(
            f'{len(missing)} of {len(videos)} videos of {gt_file} are missing under '
            f'{video_root}, e.g. {[osp.join(video_root, v + video_suffix) for v in missing[:3]]}'
        )
    if frame_root is None:
        return
    for video in track_iter_progress(videos):
        extract_frames(
            osp.join(video_root, video + video_suffix),
            osp.join(frame_root, video),
            expected_frames=int(gt['nframes'][video]),
        )


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    logger = MMLogger.get_instance('prepare_multisports')
    if args.video_root:
        check_or_extract_videos(args.gt, args.video_root, args.video_suffix, args.extract_frames)
    elif args.extract_frames:
        raise SystemExit('--extract-frames needs --video-root')
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


if __name__ == '__main__':
    main()
