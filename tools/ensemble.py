"""Average the frame detections of several models (or scales) on the same proposals.

Each input is a ``frame_detections.pkl`` dumped by ``MultiSportsTubeMetric``
(``python tools/test.py CONFIG CKPT --dump-frame-detections FILE``); the output
keeps their rows with the weighted mean score and is read by
``tools/eval_multisports.py frameAP|link`` like any result file. The logic and
its checks: :mod:`pcca_plugin.evaluation.functional.ensemble`.

Usage::

    python tools/ensemble.py A.pkl B.pkl [C.pkl ...] -o ENSEMBLE.pkl [--weights 2 1 ...]
        [--gt GT.pkl]   # names the videos in errors and checks the rows against the GT
    # test split (no GT): the format-only outputs of tools/test.py --test-split
    python tools/ensemble.py A_frame_detections.pkl B_frame_detections.pkl \
        --out-prefix work_dirs/submission/ensemble [--weights ...] [--zip]

Format-only results come with ``<prefix>_videos.json``, the ordered video list
their ``video_index`` refers to; inputs whose lists differ are an error.
``--out-prefix P`` writes a whole submission: ``P_frame_detections.pkl``,
``P_videos.json`` and ``P_video_detections.pkl`` (the averaged detections
linked into tubes), from the inputs' video list or ``--gt``; ``--zip`` also
writes ``P_submission.zip``, the archive the 2021 challenge server read.
"""

import argparse
from typing import List, Optional

from pcca_plugin.evaluation.functional.ensemble import DEFAULT_BOX_ATOL, ensemble_files
from pcca_plugin.utils.cli import add_debug_argument, run_cli


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('results', nargs='+', help='frame_detections.pkl files (2 or more)')
    outputs = parser.add_mutually_exclusive_group(required=True)
    outputs.add_argument('-o', '--out', help='output frame_detections.pkl')
    outputs.add_argument(
        '--out-prefix',
        help='write a submission: PREFIX_frame_detections.pkl, PREFIX_videos.json, '
        "PREFIX_video_detections.pkl (needs the inputs' _videos.json or --gt)",
    )
    parser.add_argument(
        '--zip',
        action='store_true',
        help='with --out-prefix: also write PREFIX_submission.zip (the 2021 server archive)',
    )
    parser.add_argument('--weights', nargs='+', type=float, help='one weight per file')
    parser.add_argument('--gt', help='MultiSports GT pickle: names videos, checks the rows')
    parser.add_argument(
        '--box-atol', type=float, default=DEFAULT_BOX_ATOL, help='box tolerance in pixels'
    )
    args = add_debug_argument(parser).parse_args(argv)
    if args.zip and not args.out_prefix:
        parser.error('--zip archives a submission: give --out-prefix PREFIX')
    return args


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    merged, written = ensemble_files(
        args.results, args.out, args.out_prefix, args.weights, args.gt, args.box_atol, args.zip
    )
    print(f'{len(args.results)} files, {merged.shape[0]} rows -> ' + ', '.join(written.values()))


if __name__ == '__main__':
    run_cli(main)
