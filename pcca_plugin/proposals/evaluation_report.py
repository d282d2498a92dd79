"""AP@0.5 / AR@100 of a proposal file as a table and a json file (``tools/det/eval_proposals.py``).

The numbers are :func:`pcca_plugin.proposals.evaluation.evaluate_proposal_file_contents`;
this module reads the two files, lays the numbers out one row per video and
writes them as json, where a figure without GT boxes (NaN) becomes ``null``.
"""

import json
import math
import os
import os.path as osp
from typing import Dict, List, Mapping

from ..utils.pickle_io import load_pickle
from .evaluation import (
    DEFAULT_IOU_THR,
    DEFAULT_MAX_PER_FRAME,
    evaluate_proposal_file_contents,
)

#: Name of the row of all videos together.
OVERALL = 'overall'


def evaluate_proposal_files(
    proposal_file: str,
    gt_file: str,
    split: str = 'val',
    iou_thr: float = DEFAULT_IOU_THR,
    max_per_frame: int = DEFAULT_MAX_PER_FRAME,
) -> Dict:
    """Evaluate a proposal pickle against a MultiSports GT pickle.

    Args:
        proposal_file: frame key -> ``(n, 5)`` normalised ``[x1, y1, x2, y2, score]``.
        gt_file: the MultiSports GT pickle.
        split: ``'val'`` (the GT's ``test_videos``) or ``'train'``.
        iou_thr, max_per_frame: see :func:`~pcca_plugin.proposals.evaluate_proposals`.

    Returns:
        The results of ``evaluate_proposal_file_contents`` (``overall``,
        ``per_video``...) plus ``files``: the two paths and the split.
    """
    results = evaluate_proposal_file_contents(
        load_pickle(proposal_file),
        load_pickle(gt_file),
        split=split,
        iou_thr=iou_thr,
        max_per_frame=max_per_frame,
        gt_source=gt_file,
        proposal_source=proposal_file,
    )
    results['files'] = {'proposals': proposal_file, 'gt': gt_file, 'split': split}
    return results


def format_proposal_table(
    results: Mapping,
    per_video: bool = False,
    iou_thr: float = DEFAULT_IOU_THR,
    max_per_frame: int = DEFAULT_MAX_PER_FRAME,
) -> List[str]:
    """The lines of the results table: a header, one row per video if ``per_video``, overall."""
    rows = dict(results['per_video']) if per_video else {}
    rows[OVERALL] = results[OVERALL]
    width = max(len(name) for name in rows)
    ap_name = f'AP@{iou_thr:g}'
    ar_name = f'AR@{max_per_frame}'
    lines = [
        f'{"video":<{width}}  {ap_name:>7}  {ar_name:>7}  {"frames":>7}  {"gt boxes":>8}  '
        f'{"proposals":>9}'
    ]
    for name, stats in rows.items():
        lines.append(
            f'{name:<{width}}  {stats["AP"]:7.2f}  {stats["AR"]:7.2f}  {stats["num_frames"]:7d}'
            f'  {stats["num_gt_boxes"]:8d}  {stats["num_proposals"]:9d}'
        )
    return lines


def json_safe(value):
    """NaN (no GT boxes) -> None, recursively through dicts."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def write_results_json(results: Mapping, path: str) -> None:
    """Write ``results`` to ``path`` as json (NaN as ``null``), creating its folder."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(json_safe(results), f, indent=1)
