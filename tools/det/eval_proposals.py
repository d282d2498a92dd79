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
import json
import math
import os
import os.path as osp
import sys
from typing import Dict, List, Optional

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from pcca_plugin.proposals.evaluation import (  # noqa: E402
    DEFAULT_IOU_THR,
    DEFAULT_MAX_PER_FRAME,
    evaluate_proposal_file_contents,
)
from pcca_plugin.utils.pickle_io import load_pickle  # noqa: E402


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
    return parser.parse_args(argv)


def _json_safe(value):
    """NaN (no GT boxes) -> None, recursively."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def format_row(name: str, stats: Dict, width: int) -> str:
    return (
        f'{name:<{width}}  {stats["AP"]:7.2f}  {stats["AR"]:7.2f}  {stats["num_frames"]:7d}'
        f'  {stats["num_gt_boxes"]:8d}  {stats["num_proposals"]:9d}'
    )


def main(argv: Optional[List[str]] = None) -> Dict:
    """Evaluate, print a table, optionally write json; returns the results dict."""
    args = parse_args(argv)
    proposals = load_pickle(args.proposals)
    gt = load_pickle(args.gt)
    results = evaluate_proposal_file_contents(
        proposals,
        gt,
        split=args.split,
        iou_thr=args.iou_thr,
        max_per_frame=args.max_per_frame,
        gt_source=args.gt,
        proposal_source=args.proposals,
    )
    results['files'] = {'proposals': args.proposals, 'gt': args.gt, 'split': args.split}
    rows = dict(results['per_video']) if args.per_video else {}
    rows['overall'] = results['overall']
    width = max(len(name) for name in rows)
    ap_name = f'AP@{args.iou_thr:g}'
    ar_name = f'AR@{args.max_per_frame}'
    print(
        f'{"video":<{width}}  {ap_name:>7}  {ar_name:>7}  {"frames":>7}  {"gt boxes":>8}  '
        f'{"proposals":>9}'
    )
    for name, stats in rows.items():
        print(format_row(name, stats, width))
    missing = results['overall']['frames_without_proposals']
    if missing:
        print(
            f'warning: {missing} annotated frames have no entry in {args.proposals} '
            '(counted as frames without proposals)'
        )
    if args.json:
        folder = osp.dirname(osp.abspath(args.json))
        os.makedirs(folder, exist_ok=True)
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(_json_safe(results), f, indent=1)
        print(f'-> {args.json}')
    return results


if __name__ == '__main__':
    main()
