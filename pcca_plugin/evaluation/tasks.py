"""The tasks of the official MultiSports evaluation command line, run on files.

``tools/eval_multisports.py TASK GT DETECTIONS`` is a thin command line over
:func:`run_task`. The tasks and the tables they print follow the official
``evaluate_multisports.py`` (``docs/evaluation.md``):

* ``frameAP``: frame-mAP of frame detections at one IoU threshold;
* ``videoAP``: video-mAP of video detections at one ST-IoU threshold;
* ``videoAP_all``: video-mAP averaged over the official ranges, and at every
  threshold of each range;
* ``videoAP_error``: the error analysis of video detections;
* ``link``: frame detections linked into video detections, written to a file;
* ``server2021``: the six figures of the 2021 challenge server
  (:mod:`.functional.server2021`) of a submission folder or zip
  (:func:`~.functional.archive.read_submission`).

Numpy only (matplotlib is imported by the plots, when asked for).
"""

import json
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

from pcca_plugin.utils.pickle_io import dump_pickle, write_file_atomically

from .functional import (
    ERROR_COLUMNS,
    MIN_TUBE_LENGTH,
    MIN_TUBE_SCORE,
    SERVER2021_FIGURES,
    VIDEO_IOU_RANGES,
    APResult,
    VideoAPEvaluator,
    frame_ap,
    link_tubes,
    load_ground_truth,
    range_thresholds,
    read_submission,
    video_ap_error,
)
from .functional.server2021 import score_submission
from .functional.video_ap import ERROR_TITLES

#: The tasks of the official command line.
TASKS = ('frameAP', 'videoAP', 'videoAP_all', 'videoAP_error', 'link', 'server2021')
#: Width of the class-name column in printed tables.
NAME_WIDTH = 30
#: The IoU threshold of the PR curves plotted by ``videoAP_all``.
PLOTTED_VIDEO_IOU = 0.5
#: Resolution of the written plots.
PLOT_DPI = 120
#: More classes than this and the PR plot has no legend.
MAX_LEGEND_ENTRIES = 12


def ap_table(title: str, result: APResult) -> List[str]:
    """The official per-class table: ``title``, one line per class, then the mean."""
    lines = [title]
    lines += [f'{name:{NAME_WIDTH}s} {value:8.2f}' for name, value in result.per_class.items()]
    lines.append(f'{"mAP":{NAME_WIDTH}s} {result.mean_ap:8.2f}')
    return lines


def error_table(result: Dict) -> List[str]:
    """The official error-analysis table of :func:`video_ap_error`'s result."""
    lines = ['Error Analysis\n']
    lines.append(
        f'{"label":{NAME_WIDTH}s} ' + ' '.join(f'{ERROR_TITLES[c]:>9s}' for c in ERROR_COLUMNS)
    )
    for name, row in result['per_class'].items():
        lines.append(f'{name:{NAME_WIDTH}s} ' + ' '.join(f'{row[c]:9.2f}' for c in ERROR_COLUMNS))
    mean = result['mean']
    lines.append(f'{"mean":{NAME_WIDTH}s} ' + ' '.join(f'{mean[c]:9.2f}' for c in ERROR_COLUMNS))
    return lines


def plot_ap(folder: str, title: str, result: APResult) -> List[str]:
    """Per-class AP bars and (when ``result.pr`` is kept) PR curves as PNG files.

    Args:
        folder: where the files go (created).
        title: the figure title, e.g. ``'frame AP@0.5'``; it names the files too.
        result: the AP of every class.

    Returns:
        The written files.
    """
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    os.makedirs(folder, exist_ok=True)
    stem = osp.join(folder, title.replace(' ', '_').replace('@', '_'))
    names = list(result.per_class)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.25 * len(names) + 2), 4.5))
    ax.bar(range(len(names)), [result.per_class[n] for n in names], color='tab:blue')
    ax.axhline(result.mean_ap, color='tab:red', linestyle='--', label=f'mean {result.mean_ap:.2f}')
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=90, fontsize=7)
    ax.set_ylabel('AP (%)')
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    written = [f'{stem}_per_class_ap.png']
    fig.savefig(written[-1], dpi=PLOT_DPI)
    plt.close(fig)
    if result.pr:
        fig, ax = plt.subplots(figsize=(6, 5))
        for name, (precision, recall) in result.pr.items():
            ax.plot(recall, precision, linewidth=0.8, label=name)
        ax.set_xlabel('recall')
        ax.set_ylabel('precision')
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_title(f'{title}: precision-recall per class')
        if len(result.pr) <= MAX_LEGEND_ENTRIES:
            ax.legend(fontsize=6)
        fig.tight_layout()
        written.append(f'{stem}_pr_curves.png')
        fig.savefig(written[-1], dpi=PLOT_DPI)
        plt.close(fig)
    return written


def run_task(
    task: str,
    groundtruth: str,
    detections: str,
    thr: float = 0.5,
    out: Optional[str] = None,
    len_thr: int = MIN_TUBE_LENGTH,
    score_thr: float = MIN_TUBE_SCORE,
    plot_dir: Optional[str] = None,
    tie_order: str = 'official',
    progress: bool = True,
) -> Tuple[Dict, List[str]]:
    """Run one task of the official command line on files.

    Args:
        task: one of :data:`TASKS`.
        groundtruth: the MultiSports GT pickle.
        detections: frame detections (``frameAP``, ``link``: a pickle or an
            ``(M, 8)`` ``.npy``), video detections (the ``videoAP`` tasks), or
            a submission folder or zip (``server2021``).
        thr: the IoU threshold (``frameAP``, ``videoAP``, ``videoAP_error``).
        out: ``link``: where to write the video detections.
        len_thr: ``link``: the shortest tube kept, in frames.
        score_thr: ``link``: the lowest tube score kept.
        plot_dir: write per-class AP bars and PR curves (PNG) here.
        tie_order: ``'official'`` or ``'stable'`` (``docs/protocol.md``, "Tied scores").
        progress: show progress bars.

    Returns:
        ``(report, lines)``: every figure (JSON-ready: task, inputs, overall
        and per class; the files written) and the text the official tool prints.

    Raises:
        ValueError: an unknown task, ``link`` without ``out``; bad files (the
            message names the file, the record and the fix).
    """
    if task not in TASKS:
        raise ValueError(f'unknown task {task!r}; use one of {TASKS}')
    if task == 'link' and not out:
        raise ValueError('link writes the video detections: give the output file (-o)')
    gt = load_ground_truth(groundtruth)
    report = dict(task=task, groundtruth=groundtruth, detections=detections, tie_order=tie_order)
    plots: List[str] = []
    keep_pr = bool(plot_dir)  # the PR arrays of 10 M detections would double the memory
    if task == 'frameAP':
        result = frame_ap(gt, detections, thr, keep_pr, progress, tie_order)
        lines = ap_table(f'frameAP_{thr}\n', result)
        report['frameAP'] = result.to_dict()
        if plot_dir:
            plots += plot_ap(plot_dir, f'frame AP@{thr:g}', result)
    elif task == 'videoAP':
        result = VideoAPEvaluator(gt, detections, progress, tie_order).ap(thr, keep_pr)
        lines = ap_table(f'VideoAP_{thr}\n', result)
        report['videoAP'] = result.to_dict()
        if plot_dir:
            plots += plot_ap(plot_dir, f'video AP@{thr:g}', result)
    elif task == 'videoAP_all':
        evaluator = VideoAPEvaluator(gt, detections, progress, tie_order)
        report['videoAP_all'] = {name: evaluator.range_map(name) for name in VIDEO_IOU_RANGES}
        lines = [
            f'\nVideoAP_{name}: {value:8.2f} \n' for name, value in report['videoAP_all'].items()
        ]
        report['per_threshold'] = {
            f'{iou:.2f}': evaluator.ap(iou).to_dict()
            for name in VIDEO_IOU_RANGES
            for iou in range_thresholds(name)
        }
        if plot_dir:
            main_range = evaluator.ap(PLOTTED_VIDEO_IOU, keep_pr=True)
            plots += plot_ap(plot_dir, f'video AP@{PLOTTED_VIDEO_IOU:g}', main_range)
    elif task == 'videoAP_error':
        result = video_ap_error(gt, detections, thr, progress, tie_order)
        lines = error_table(result)
        report['videoAP_error'] = result
    elif task == 'server2021':
        report['server2021'] = score_submission(
            gt, read_submission(detections), tie_order, progress
        )
        lines = ['2021 challenge server (docs/protocol.md, "The 2021 challenge server"), percent']
        lines += [f'{name:12s} {report["server2021"][name]:10.4f}' for name in SERVER2021_FIGURES]
    else:  # link
        tubes = link_tubes(
            gt, detections, len_thr, score_thr, progress=progress, tie_order=tie_order
        )
        dump_pickle(tubes, out)
        count = sum(len(v) for v in tubes.values())
        lines = [f'{count} tubes written to {out}']
        report['link'] = dict(out=out, num_tubes=count, len_thr=len_thr, score_thr=score_thr)
    if plots:
        report['plots'] = plots
        lines.append('plots: ' + ', '.join(plots))
    return report, lines


def write_json(report: Dict, path: str) -> None:
    """Write ``report`` as indented JSON, atomically: never a half-written file."""
    write_file_atomically(json.dumps(report, indent=2).encode(), path)
