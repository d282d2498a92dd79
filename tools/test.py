"""Test a checkpoint with mmengine's Runner, optionally with test-time augmentation.

Usage::

    python tools/test.py CONFIG CHECKPOINT [--tta] [--work-dir DIR] [--cfg-options k=v ...]
        [--dump-frame-detections FRAME.pkl] [--dump-video-detections VIDEO.pkl]
    # the challenge test split (no GT): write the submission files, no mAP
    python tools/test.py CONFIG CHECKPOINT --test-split --outfile-prefix PREFIX [--tta] [--zip]
    python tools/test.py CONFIG CHECKPOINT --format-only --outfile-prefix PREFIX
    bash tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [same options]

``--tta`` works as in mmdet and mmpretrain: the config's ``tta_model`` wraps
``model`` and ``tta_pipeline`` replaces the test pipeline. A config without
them gets :class:`~pcca_plugin.models.tta.SpatioTemporalTTAModel` with the
default views (short sides 256 and 360, with and without horizontal flip) and
a TTA pipeline derived from its test pipeline.

``--format-only`` follows mmdet: the config's ``MultiSportsTubeMetric`` gets
``format_only=True``, no GT file, and ``outfile_prefix``; it writes
``PREFIX_frame_detections.pkl``, ``PREFIX_videos.json`` and
``PREFIX_video_detections.pkl`` (``docs/submission.md``). ``--test-split``
also tests on the config's ``test_split_dataset`` (the videos prepared with
``prepare_multisports.py --split test``). ``--zip`` also writes
``PREFIX_submission.zip``, the archive the 2021 challenge server read (its
root: ``frame_detections.pkl``, ``video_detections.pkl``, pickle protocol 2).
The run is :func:`pcca_plugin.apis.run_test`.
"""

import argparse
from typing import List, Optional

import pcca_plugin
from pcca_plugin.apis import add_runner_arguments, run_test
from pcca_plugin.utils.cli import add_debug_argument, run_cli


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='test config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation')
    parser.add_argument(
        '--dump-frame-detections', help='write frame_detections.pkl (for tools/ensemble.py)'
    )
    parser.add_argument('--dump-video-detections', help='write video_detections.pkl')
    parser.add_argument(
        '--format-only',
        action='store_true',
        help='write the submission files (no GT read, no mAP); needs --outfile-prefix',
    )
    parser.add_argument(
        '--test-split',
        action='store_true',
        help="test on the config's test_split_dataset (the challenge test videos); "
        'implies --format-only',
    )
    parser.add_argument(
        '--outfile-prefix',
        help='path prefix of the submission files (PREFIX_frame_detections.pkl, ...)',
    )
    parser.add_argument(
        '--zip',
        action='store_true',
        help='also write PREFIX_submission.zip, the archive the 2021 challenge server read '
        '(with --format-only / --test-split)',
    )
    add_runner_arguments(parser)
    args = add_debug_argument(parser).parse_args(argv)
    dumps = args.dump_frame_detections or args.dump_video_detections
    if (args.format_only or args.test_split) and dumps:
        parser.error('--format-only writes PREFIX_*_detections.pkl; drop --dump-*-detections')
    if args.zip and not (args.format_only or args.test_split):
        parser.error(
            '--zip archives the submission files of --format-only / --test-split; add one of '
            'them and --outfile-prefix PREFIX'
        )
    return args


def main(argv: Optional[List[str]] = None) -> dict:
    """Build the Runner, load the checkpoint, test; return the metrics."""
    args = parse_args(argv)
    pcca_plugin.register_all_modules()
    return run_test(
        args.config,
        args.checkpoint,
        work_dir=args.work_dir,
        cfg_options=args.cfg_options,
        launcher=args.launcher,
        local_rank=args.local_rank,
        tta=args.tta,
        format_only=args.format_only,
        test_split=args.test_split,
        outfile_prefix=args.outfile_prefix,
        dump_frame_detections=args.dump_frame_detections,
        dump_video_detections=args.dump_video_detections,
        archive=args.zip,
    )


if __name__ == '__main__':
    run_cli(main)
