"""Run a person detector over videos and write MultiSports person proposals.

Output: one pickle, ``{'<video_name>,<frame:04d>': np.ndarray[n, 5] float32}``
with rows ``[x1, y1, x2, y2, score]``, coordinates divided by the frame
width/height, scores >= 0.05 (``--min-score``), sorted by score. This is the
official MultiSports person-box format and also what pcca_plugin's
MultiSports dataset reads (``proposal_file``): one file serves both. Every
processed frame has a key, with a ``(0, 5)`` array when nothing was detected.

Resumable: each finished video is written to ``<work-dir>/<video_name>.pkl``
(temporary name, then rename); a rerun skips videos whose shard is valid and
merges all shards into ``--out`` once every video is done
(:func:`pcca_plugin.proposals.generate_proposal_file`).

Usage::

    # the validation videos of a MultiSports GT file, every frame
    python tools/det/generate_proposals.py CONFIG CHECKPOINT \\
        --gt data/multisports/annotations/multisports_GT.pkl --split val \\
        --frame-root data/multisports/rawframes --out data/multisports/proposals/val.pkl
    # any videos / frame folders
    python tools/det/generate_proposals.py CONFIG CHECKPOINT --videos a.mp4 b.mp4 --out p.pkl
"""

import argparse
import logging
from typing import List, Optional, Tuple

from mmengine.config import DictAction

import pcca_plugin
from pcca_plugin.proposals.detector import DEFAULT_MIN_SCORE, PersonDetector
from pcca_plugin.proposals.generation import (
    ALL_SPLITS,
    DEFAULT_BATCH_SIZE,
    GenerationReport,
    collect_sources,
    generate_proposal_file,
)
from pcca_plugin.utils.cli import add_debug_argument, run_cli

#: --split choices: one GT split, or both.
SPLIT_CHOICES = ('train', 'val', ALL_SPLITS)


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be >= 1, got {value}')
    return value


def parse_part(text: str) -> Tuple[int, int]:
    """An argparse type: ``'2/4'`` -> ``(2, 4)``."""
    index, sep, count = text.partition('/')
    if not (sep and index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
        raise argparse.ArgumentTypeError(f"must be I/N with 1 <= I <= N (e.g. '1/4'), got {text!r}")
    return int(index), int(count)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('config', help='mmdet detector config (e.g. configs/det/...)')
    parser.add_argument('checkpoint', help='detector checkpoint')
    inputs = parser.add_mutually_exclusive_group(required=True)
    inputs.add_argument('--videos', nargs='+', help='video files or frame folders')
    inputs.add_argument('--gt', help='MultiSports GT pickle: take the videos of --split')
    parser.add_argument(
        '--split',
        default='val',
        choices=SPLIT_CHOICES,
        help='with --gt: which videos (val = test_videos; default %(default)s)',
    )
    parser.add_argument(
        '--video-root',
        default=None,
        help='with --gt: <root>/<video_name>.mp4; with --videos: names are '
        'paths relative to this root (default: bare file names)',
    )
    parser.add_argument(
        '--frame-root',
        default=None,
        help='with --gt: frame folders <root>/<video_name>/ (preferred to '
        '--video-root when both exist)',
    )
    parser.add_argument('--out', required=True, help='merged proposal pickle to write')
    parser.add_argument(
        '--work-dir', default=None, help='shard folder (default: <out without .pkl>_shards)'
    )
    parser.add_argument(
        '--frame-interval',
        type=positive_int,
        default=1,
        help='run on frames 1, 1+k, 1+2k, ... (default: every frame)',
    )
    parser.add_argument(
        '--batch-size',
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        help='frames per detector call (default %(default)s)',
    )
    parser.add_argument(
        '--min-score',
        type=float,
        default=DEFAULT_MIN_SCORE,
        help="drop boxes scoring below it (default %(default)s); the config's "
        'model.test_cfg.rcnn.score_thr applies first',
    )
    parser.add_argument('--device', default='cpu', help="torch device, e.g. 'cuda:0'")
    parser.add_argument(
        '--max-videos',
        type=positive_int,
        default=None,
        help='compute at most N videos in this run, then stop without merging '
        '(run again to continue)',
    )
    parser.add_argument(
        '--part',
        type=parse_part,
        default=None,
        metavar='I/N',
        help='process only part I of N (videos I-1, I-1+N, ...; I from 1), e.g. one process '
        'per GPU sharing --work-dir; the part that finds every shard present writes --out',
    )
    parser.add_argument(
        '--redo-corrupt',
        action='store_true',
        help='recompute corrupted shards (with a warning) instead of stopping',
    )
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default=None,
        metavar='KEY=VALUE',
        help='override config entries, e.g. model.test_cfg.rcnn.score_thr=0.05',
    )
    return add_debug_argument(parser).parse_args(argv)


def main(argv: Optional[List[str]] = None) -> GenerationReport:
    """Generate (or resume) shards; merge them into ``--out`` when all are done."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')
    pcca_plugin.register_all_modules()
    sources = collect_sources(args.videos, args.gt, args.split, args.video_root, args.frame_root)
    detector = PersonDetector(
        args.config,
        args.checkpoint,
        device=args.device,
        cfg_options=args.cfg_options or {},
        min_score=args.min_score,
    )
    return generate_proposal_file(
        detector.detect,
        detector.fingerprint,
        sources,
        args.out,
        work_dir=args.work_dir,
        frame_interval=args.frame_interval,
        batch_size=args.batch_size,
        max_videos=args.max_videos,
        part=args.part,
        redo_corrupt=args.redo_corrupt,
        show_progress=not args.no_progress,
    )


if __name__ == '__main__':
    run_cli(main)
