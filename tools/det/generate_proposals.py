"""Run a person detector over videos and write MultiSports person proposals.

Output: one pickle, ``{'<video_name>,<frame:04d>': np.ndarray[n, 5] float32}``
with rows ``[x1, y1, x2, y2, score]``, coordinates divided by the frame
width/height, scores >= 0.05 (``--min-score``), sorted by score. This is the
official MultiSports person-box format and also what pcca_plugin's
MultiSports dataset reads (``proposal_file``): one file serves both. Every
processed frame has a key, with a ``(0, 5)`` array when nothing was detected.

Resumable: each finished video is written to ``<work-dir>/<video_name>.pkl``
(temporary name, then rename); a rerun skips videos whose shard is valid and
merges all shards into ``--out`` once every video is done.

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
import os.path as osp
import sys
from typing import Dict, List, Optional, Tuple

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import pcca_plugin  # noqa: E402,F401  (compatibility fixes: checkpoint loading on torch 2.6+)
from pcca_plugin.proposals.detector import DEFAULT_MIN_SCORE, PersonDetector  # noqa: E402
from pcca_plugin.proposals.frames import FrameSource, resolve_sources, sources_from_paths  # noqa: E402
from pcca_plugin.proposals.generation import (  # noqa: E402
    DEFAULT_BATCH_SIZE,
    GenerationReport,
    generate_shards,
    shard_settings,
)
from pcca_plugin.proposals.ground_truth import split_videos  # noqa: E402
from pcca_plugin.proposals.shards import merge_shards, shard_path  # noqa: E402
from pcca_plugin.utils.pickle_io import dump_pickle, load_pickle  # noqa: E402

#: --split choices: one GT split, or both.
SPLIT_CHOICES = ('train', 'val', 'all')


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
        type=int,
        default=1,
        help='run on frames 1, 1+k, 1+2k, ... (default: every frame)',
    )
    parser.add_argument(
        '--batch-size',
        type=int,
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
        type=int,
        default=None,
        help='compute at most N videos in this run, then stop without merging '
        '(run again to continue)',
    )
    parser.add_argument(
        '--part',
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
        default=None,
        metavar='KEY=VALUE',
        help='override config entries, e.g. model.test_cfg.rcnn.score_thr=0.05',
    )
    return parser.parse_args(argv)


def _cfg_options(pairs: Optional[List[str]]) -> Dict:
    from mmengine.config import DictAction

    if not pairs:
        return {}
    namespace = argparse.Namespace()
    DictAction(option_strings=['--cfg-options'], dest='cfg_options')(None, namespace, pairs)
    return namespace.cfg_options


def parse_part(text: Optional[str]) -> Optional[Tuple[int, int]]:
    """``'2/4'`` -> ``(2, 4)``; None stays None."""
    if text is None:
        return None
    index, sep, count = text.partition('/')
    valid = sep and index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)
    if not valid:
        raise SystemExit(f"--part must be I/N with 1 <= I <= N (e.g. '1/4'), got {text!r}")
    return int(index), int(count)


def collect_sources(args: argparse.Namespace) -> List[FrameSource]:
    """The videos to process, in output order."""
    if args.videos:
        return sources_from_paths(args.videos, root=args.video_root)
    gt = load_pickle(args.gt)
    splits = ('train', 'val') if args.split == 'all' else (args.split,)
    names = [name for split in splits for name in split_videos(gt, split, args.gt)]
    return resolve_sources(names, video_root=args.video_root, frame_root=args.frame_root)


def main(argv: Optional[List[str]] = None) -> GenerationReport:
    """Generate (or resume) shards; merge them into ``--out`` when all are done."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')
    for name in ('frame_interval', 'batch_size', 'max_videos'):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SystemExit(f'--{name.replace("_", "-")} must be >= 1, got {value}')
    part = parse_part(args.part)
    sources = collect_sources(args)
    own_sources = sources if part is None else sources[part[0] - 1 :: part[1]]
    work_dir = args.work_dir or osp.splitext(args.out)[0] + '_shards'
    detector = PersonDetector(
        args.config,
        args.checkpoint,
        device=args.device,
        cfg_options=_cfg_options(args.cfg_options),
        min_score=args.min_score,
    )
    report = generate_shards(
        detector.detect,
        own_sources,
        work_dir,
        detector.fingerprint,
        frame_interval=args.frame_interval,
        batch_size=args.batch_size,
        max_videos=args.max_videos,
        redo_corrupt=args.redo_corrupt,
        show_progress=not args.no_progress,
    )
    print(
        f'{len(report.computed)} videos computed ({report.num_frames} frames), '
        f'{len(report.reused)} reused from {work_dir}'
    )
    if not report.complete:
        print(
            f'stopped after --max-videos {args.max_videos}: {len(report.remaining)} videos '
            'remain; run the same command again to continue'
        )
        return report
    settings = shard_settings(detector.fingerprint, args.frame_interval)
    names = [source.name for source in sources]
    if part is not None:
        missing = [name for name in names if not osp.isfile(shard_path(work_dir, name))]
        if missing:
            print(
                f'part {args.part} done; {len(missing)} videos of other parts are not done '
                f'yet (e.g. {missing[0]}); the last part to finish writes {args.out}'
            )
            return report
    proposals = merge_shards(work_dir, names, settings)
    dump_pickle(proposals, args.out)
    num_boxes = sum(len(boxes) for boxes in proposals.values())
    print(f'{len(proposals)} frames, {num_boxes} person boxes -> {args.out}')
    return report


if __name__ == '__main__':
    main()
