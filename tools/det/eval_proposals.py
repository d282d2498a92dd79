"""AP@0.5 and AR@100 of a person-proposal file against MultiSports GT boxes.

The two detector columns of the PCCA paper's Table 2, computed only on the
frames that carry tube annotations; see ``docs/detector.md`` and
:mod:`pcca_plugin.proposals.evaluation` for the exact definitions.

Usage::

    python tools/det/eval_proposals.py PROPOSALS.pkl \\
        data/multisports/annotations/multisports_GT.pkl \\
        --split val --json results.json [--per-video]
"""

import argparse
from typing import List, Optional

from pcca_plugin.proposals.evaluation import DEFAULT_IOU_THR, DEFAULT_MAX_PER_FRAME
from pcca_plugin.proposals.evaluation_report import (
    OVERALL,
    evaluate_proposal_files,
    format_proposal_table,
    write_results_json,
)
from pcca_plugin.utils.cli import add_debug_argument, run_cli


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('proposals', help='proposal pickle (frame key -> (n, 5) normalised)')
    parser.add_argument('gt', help='MultiSports GT pickle')
    parser.add_argument(
        '--split',
        default='val',
        choices=('train', 'val'),
        help='videos to evaluate (val = test_videos; default %(default)s)',
    )
    parser.add_argument('--iou-thr', type=float, default=DEFAULT_IOU_THR)
    parser.add_argument(
        '--max-per-frame',
        type=int,
        default=DEFAULT_MAX_PER_FRAME,
        help='proposals per frame used for recall (default %(default)s)',
    )
    parser.add_argument('--json', default=None, help='write all numbers to this json file')
    parser.add_argument('--per-video', action='store_true', help='print one line per video')
    return add_debug_argument(parser).parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    """Evaluate, print a table, optionally write json; returns the results dict."""
    args = parse_args(argv)
    results = evaluate_proposal_files(
        args.proposals, args.gt, args.split, args.iou_thr, args.max_per_frame
    )
    table = format_proposal_table(results, args.per_video, args.iou_thr, args.max_per_frame)
    print('\n'.join(table))
    missing = results[OVERALL]['frames_without_proposals']
    if missing:
        print(
            f'warning: {missing} annotated frames have no entry in {args.proposals} '
            '(counted as frames without proposals)'
        )
    if args.json:
        write_results_json(results, args.json)
        print(f'-> {args.json}')
    return results


if __name__ == '__main__':
    run_cli(main)
