"""Report of the demo (:mod:`pcca_plugin.demo.pipeline`): tables, per-class AP, annotated video.

Writes under the demo's work dir:

* ``results.json``: every figure, per model and per class;
* ``results.md``: the paper's Table 1 columns (F@0.5, V@0.2, V@0.5, V@0.1:0.9)
  under today's protocol and under the 2021 challenge server's (the scorer of
  the paper's figures, ``docs/protocol.md``), then per-class frame AP grouped
  into motion / context / tail classes;
* ``per_class_ap.png``: per-class frame AP@0.5 of each model;
* ``annotated_<video>.mp4`` and ``.gif``: one held-out video with the linked
  tubes of the final model (ids, labels, scores);
* ``training_curves.png``: loss and lr of the linear, PCCA and phase-2 runs
  per epoch (:mod:`pcca_plugin.visualization.training_curves`).

:func:`write_report` writes them for one seed; :func:`write_summary` combines the
seeds' ``results.json`` into the same files with mean and std over seeds, and
checks the paper's claims seed by seed (:func:`pcca_plugin.demo.claims.check_claims`):
``results.md`` prints each as a PASS / FAIL line, ``results.json`` holds them under
``claims``.
"""

import json
import os.path as osp
import shutil
import textwrap
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from pcca_plugin.evaluation.functional import frame_ap, load_ground_truth, server2021_figures
from pcca_plugin.utils.pickle_io import load_pickle
from pcca_plugin.visualization.training_curves import load_run, plot_curves
from pcca_plugin.visualization.tubes import (
    draw_tubes,
    read_video_frames,
    tubes_for_video,
    write_gif,
    write_mp4,
)

from .claims import check_claims, claim_differences, claim_lines
from .settings import SERVER2021_PREFIX

#: IoU threshold of the per-class frame AP in the report (the paper's F@0.5).
FRAME_IOU_THR = 0.5
#: The annotated video shows tubes scored at least this, at most this many.
MIN_DRAWN_TUBE_SCORE = 0.2
MAX_DRAWN_TUBES = 6
ANNOTATED_FPS = 8
#: File name (without extension) of the annotated held-out video.
ANNOTATED_STEM = 'annotated_held_out_video'
#: Top of the per-class AP axis: room above 100 for a one-row legend.
LEGEND_ROOM_AP = 118
#: Class names on the x axis wrap at this many characters.
TICK_LABEL_WIDTH = 16
#: Class groups of the report, from ``toy_sports_classes.json``: every class is in the
#: group of its kind (motion or context); tail classes are in 'tail' as well.
KINDS = ('motion', 'context')
GROUPS = KINDS + ('tail',)
#: File name of the training-curve figure.
CURVES_FILE = 'training_curves.png'


def load_class_groups(data_root: str) -> Dict[str, List[str]]:
    """Group -> class names, from the toy dataset's ``toy_sports_classes.json``.

    The groups overlap: a tail class counts in its kind's group and in 'tail'.
    """
    path = osp.join(data_root, 'toy_sports_classes.json')
    with open(path, encoding='utf-8') as f:
        classes = json.load(f)
    groups: Dict[str, List[str]] = {group: [] for group in GROUPS}
    for entry in classes:
        groups[entry['kind']].append(entry['name'])
        if entry['tail']:
            groups['tail'].append(entry['name'])
    return groups


def class_labels(groups: Dict[str, List[str]]) -> List[Tuple[str, str]]:
    """``(class name, 'kind' or 'kind, tail')`` of every class, motion classes first."""
    return [
        (name, kind + (', tail' if name in groups['tail'] else ''))
        for kind in KINDS
        for name in groups[kind]
    ]


def per_class_frame_ap(gt, frame_detections_file: str) -> Dict[str, float]:
    """Class name -> frame AP@0.5 (percent) from a dumped ``frame_detections.pkl``."""
    return dict(frame_ap(gt, load_pickle(frame_detections_file), FRAME_IOU_THR).per_class)


def server2021_metrics(gt, frame_detections_file: str, video_detections_file: str) -> Dict:
    """The 2021 challenge server's six figures of a test run's dumps, keyed ``server2021/<name>``.

    The keys are those of ``MultiSportsTubeMetric(protocol='server2021')``.
    """
    figures = server2021_figures(
        gt, load_pickle(frame_detections_file), load_pickle(video_detections_file)
    )
    return {f'{SERVER2021_PREFIX}/{name}': value for name, value in figures.items()}


def group_means(per_class: Dict[str, float], groups: Dict[str, List[str]]) -> Dict[str, float]:
    """Mean AP of each group's classes that have an AP (classes with GT)."""
    means = {}
    for group, names in groups.items():
        values = [per_class[name] for name in names if name in per_class]
        means[group] = float(np.mean(values)) if values else float('nan')
    return means


def plot_per_class(
    per_class: Dict[str, Dict[str, float]],
    groups: Dict[str, List[str]],
    path: str,
    errors: Optional[Dict[str, Dict[str, float]]] = None,
    title: str = 'toy-sports held-out videos: per-class frame AP',
) -> None:
    """Grouped bar chart: x = classes (motion, then context), one bar per model.

    ``errors`` (same layout as ``per_class``), when given, are drawn as error bars
    (the std over seeds).
    """
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    labels = class_labels(groups)
    names = [name for name, _ in labels]
    models = list(per_class)
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(1.1 * len(names) + 2, 4))
    positions = np.arange(len(names))
    for index, model in enumerate(models):
        values = [per_class[model].get(name, 0.0) for name in names]
        yerr = [errors[model].get(name, 0.0) for name in names] if errors else None
        ax.bar(positions + index * width, values, width, yerr=yerr, capsize=2, label=model)
    ax.set_xticks(positions + width * (len(models) - 1) / 2)
    wrapped = ['\n'.join(textwrap.wrap(name, TICK_LABEL_WIDTH)) for name, _ in labels]
    ax.set_xticklabels(
        [f'{name}\n({group})' for name, (_, group) in zip(wrapped, labels)], fontsize=8
    )
    ax.set_ylabel(f'frame AP@{FRAME_IOU_THR:g} (%)')
    ax.set_ylim(0, LEGEND_ROOM_AP)
    ax.set_title(title)
    ax.legend(loc='upper center', ncol=len(models))  # above the bars (y > 100)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def annotate_video(
    gt, video_detections_file: str, data_root: str, out_stem: str
) -> Tuple[str, str, str]:
    """Draw the linked tubes of the held-out video with the most GT tubes; mp4 + GIF."""
    tubes_by_label = load_pickle(video_detections_file)
    tubes_per_video = np.bincount(gt.tube_video, minlength=gt.num_videos)  # (V,)
    video = gt.videos[int(np.argmax(tubes_per_video))]
    frames = read_video_frames(osp.join(data_root, 'videos', video + '.mp4'))
    tubes = tubes_for_video(tubes_by_label, video, MIN_DRAWN_TUBE_SCORE)
    canvas = draw_tubes(frames, tubes, gt.labels, MAX_DRAWN_TUBES)
    mp4, gif = out_stem + '.mp4', out_stem + '.gif'
    write_mp4(canvas, mp4, ANNOTATED_FPS)
    write_gif(canvas, gif, ANNOTATED_FPS)
    return video, mp4, gif


def table1_lines(rows, table_columns, cell) -> List[str]:
    """Markdown table with the paper's Table-1 columns; ``cell(model, key) -> str``."""
    lines = [
        '| head | decoupled | ' + ' | '.join(title for _, title in table_columns) + ' |',
        '| --- | --- | ' + ' | '.join('---' for _ in table_columns) + ' |',
    ]
    for model, head, decoupled in rows:
        cells = [cell(model, key) for key, _ in table_columns]
        lines.append(f'| {head} | {"yes" if decoupled else "no"} | ' + ' | '.join(cells) + ' |')
    return lines


def per_class_lines(models, groups, class_cell, group_cell) -> List[str]:
    """Markdown table of per-class AP, then the group means.

    ``class_cell(model, class name) -> str``, ``group_cell(model, group) -> str``.
    """
    lines = [
        '| class | group | ' + ' | '.join(models) + ' |',
        '| --- | --- | ' + ' | '.join('---' for _ in models) + ' |',
    ]
    for name, group in class_labels(groups):
        lines.append(
            f'| {name} | {group} | ' + ' | '.join(class_cell(m, name) for m in models) + ' |'
        )
    for group in GROUPS:
        lines.append(
            f'| **mean {group}** | | ' + ' | '.join(group_cell(m, group) for m in models) + ' |'
        )
    return lines


def markdown_report(rows, results, table_columns, per_class, group_ap, groups) -> str:
    """The results.md text: Table-1 columns, then per-class frame AP by group."""
    lines = ['# PCCA demo on toy-sports (held-out videos, every frame)', '']
    lines += table1_lines(
        rows,
        table_columns,
        lambda model, key: f'{results[model]["metrics"].get(key, float("nan")):.2f}',
    )
    lines += ['', f'## Per-class frame AP@{FRAME_IOU_THR:g}', '']
    lines += per_class_lines(
        [model for model, _, _ in rows],
        groups,
        lambda model, name: f'{per_class[model].get(name, float("nan")):.2f}',
        lambda model, group: f'{group_ap[model][group]:.2f}',
    )
    return '\n'.join(lines) + '\n'


def report_paths(work_dir: str) -> Dict[str, str]:
    """Output name -> path of a report in ``work_dir`` (one seed's or the summary's)."""
    return dict(
        results_json=osp.join(work_dir, 'results.json'),
        results_md=osp.join(work_dir, 'results.md'),
        per_class_png=osp.join(work_dir, 'per_class_ap.png'),
        annotated_mp4=osp.join(work_dir, ANNOTATED_STEM + '.mp4'),
        annotated_gif=osp.join(work_dir, ANNOTATED_STEM + '.gif'),
        training_curves_png=osp.join(work_dir, CURVES_FILE),
    )


def plot_training_curves(
    run_dirs: Sequence[str], labels: Sequence[str], out: str, title: str, groups=None
) -> None:
    """Loss and lr per epoch of the given training runs, one PNG.

    Drawn by :func:`pcca_plugin.visualization.training_curves.plot_curves`; ``groups``
    (one name per run) gives the runs of a group one colour.
    """
    runs = [load_run(run_dir, label) for run_dir, label in zip(run_dirs, labels)]
    plot_curves(runs, out, title=title, groups=groups)


def write_report(
    work_dir: str,
    gt_file: str,
    results: Dict[str, Dict],
    rows: Sequence[Tuple[str, str, bool]],
    table_columns,
    data_root: str,
) -> Dict[str, str]:
    """Write results.json / results.md / per_class_ap.png / annotated mp4 + GIF.

    Args:
        work_dir: the demo's work dir (outputs go there).
        gt_file: the toy dataset's GT pickle.
        results: model -> ``dict(metrics, frame_detections, video_detections)``
            from the test stages.
        rows: ``(model, head name, decoupled)`` rows of the table.
        table_columns: ``(metric key, column title)`` of the table.
        data_root: the toy dataset folder (videos, class groups).

    Returns:
        output name -> path.
    """
    gt = load_ground_truth(gt_file)
    groups = load_class_groups(data_root)
    # The 2021 server's figures beside today's, in copies: ``results`` are the test stages'
    # saved outputs, which the report must leave as they are.
    results = {
        model: dict(
            run,
            metrics={
                **run['metrics'],
                **server2021_metrics(gt, run['frame_detections'], run['video_detections']),
            },
        )
        for model, run in results.items()
    }
    per_class = {
        model: per_class_frame_ap(gt, results[model]['frame_detections']) for model, _, _ in rows
    }
    group_ap = {model: group_means(per_class[model], groups) for model in per_class}
    outputs = report_paths(work_dir)
    final_model = rows[-1][0]
    video, outputs['annotated_mp4'], outputs['annotated_gif'] = annotate_video(
        gt,
        results[final_model]['video_detections'],
        data_root,
        osp.join(work_dir, ANNOTATED_STEM),
    )
    with open(outputs['results_json'], 'w', encoding='utf-8') as f:
        json.dump(
            dict(
                table={model: results[model]['metrics'] for model, _, _ in rows},
                per_class_frame_ap=per_class,
                group_frame_ap=group_ap,
                class_groups=groups,
                annotated_video=video,
            ),
            f,
            indent=2,
        )
    with open(outputs['results_md'], 'w', encoding='utf-8') as f:
        f.write(markdown_report(rows, results, table_columns, per_class, group_ap, groups))
    plot_per_class(per_class, groups, outputs['per_class_png'])
    plot_training_curves(
        [osp.join(work_dir, model) for model, _, _ in rows],
        [model for model, _, _ in rows],
        outputs['training_curves_png'],
        title='toy-sports: training of the three detectors (frozen pretrained backbone)',
    )
    return outputs


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and population std of the finite values (NaN, NaN when there are none)."""
    finite = [v for v in values if np.isfinite(v)]
    if not finite:
        return float('nan'), float('nan')
    return float(np.mean(finite)), float(np.std(finite))


def _load_seed_report(path: str) -> Dict:
    if not osp.isfile(path):
        raise FileNotFoundError(
            f"{path}: a seed's results.json is missing; run that seed again "
            '(python tools/run_demo.py --seeds S) and its finished stages are reused.'
        )
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def _cell(mean: float, std: float) -> str:
    return f'{mean:.2f} ± {std:.2f}'


def summary_markdown(summary: Dict, rows, table_columns) -> str:
    """results.md over seeds: Table-1 columns, the claims, per-seed figures, per-class AP."""
    seeds, models = summary['seeds'], [model for model, _, _ in rows]
    lines = [
        f'# PCCA demo on toy-sports: mean ± std over seeds {seeds}',
        '',
        'Every seed generates its own toy-sports data and trains its own models; '
        'the held-out videos are evaluated on every frame.',
        '',
    ]
    lines += table1_lines(
        rows, table_columns, lambda model, key: _cell(*summary['table'][model][key])
    )
    lines += ['', '## What the paper claims, seed by seed', '']
    lines += [f'- {line}' for line in claim_lines(summary['claims'])]
    if summary.get('quick'):
        lines += [
            '',
            '`--quick` trains on too little data for these claims: they are printed, not '
            'enforced (the full demo exits with an error when one fails).',
        ]
    lines += [
        '',
        '| seed | F@0.5 ' + ' / '.join(models) + ' | PCCA - linear: F@0.5 / motion / context '
        '| phase 2 - PCCA: tail mean |',
        '| --- | --- | --- | --- |',
    ]
    for seed in seeds + ['mean']:
        checks = summary['checks'][str(seed)]
        frame = summary['per_seed_frame_map'][str(seed)]
        lines.append(
            f'| {seed} | '
            + ' / '.join(f'{frame[model]:.2f}' for model in models)
            + f' | {checks["pcca_minus_linear"]:+.2f} / {checks["pcca_minus_linear_motion"]:+.2f}'
            f' / {checks["pcca_minus_linear_context"]:+.2f} | {checks["phase2_tail_gain"]:+.2f} |'
        )
    lines += ['', '## Per-class frame AP@0.5 (mean ± std over seeds)', '']
    lines += per_class_lines(
        models,
        summary['class_groups'],
        lambda model, name: _cell(*summary['per_class_frame_ap'][model][name]),
        lambda model, group: _cell(*summary['group_frame_ap'][model][group]),
    )
    return '\n'.join(lines) + '\n'


def write_summary(
    work_dir: str, seed_reports: Dict[int, str], rows, table_columns, quick: bool = False
) -> Dict[str, str]:
    """Combine the seeds' ``results.json`` into ``work_dir``'s report (mean ± std over seeds).

    Also computes the paper's differences per seed and on the mean (PCCA -
    linear frame-mAP, overall and on the motion and context class means; the
    tail-class gain of decoupled phase 2) and checks the claims on every seed
    (:func:`pcca_plugin.demo.claims.check_claims`, under ``claims`` in
    ``results.json``, PASS / FAIL lines in ``results.md``). Every file is
    written whatever the claims give; the caller decides what a failed claim
    means. The annotated video is the first seed's; the training curves show
    every seed's runs (one colour per model, one line style per seed).

    Args:
        work_dir: where the combined report goes.
        seed_reports: seed -> that seed's ``results.json``.
        rows, table_columns: see :func:`write_report`.
        quick: the ``--quick`` demo (``results.md`` says its claims are not enforced).

    Returns:
        output name -> path (the same names as :func:`write_report`).
    """
    loaded = {seed: _load_seed_report(path) for seed, path in sorted(seed_reports.items())}
    seeds = list(loaded)
    models = [model for model, _, _ in rows]
    first = loaded[seeds[0]]
    groups = first['class_groups']
    names = [name for name, _ in class_labels(groups)]

    def over_seeds(getter):
        return mean_std([getter(report) for report in loaded.values()])

    table = {
        model: {
            key: over_seeds(lambda r, m=model, k=key: r['table'][m][k]) for key, _ in table_columns
        }
        for model in models
    }
    per_class = {
        model: {
            name: over_seeds(lambda r, m=model, n=name: r['per_class_frame_ap'][m].get(n, np.nan))
            for name in names
        }
        for model in models
    }
    group_ap = {
        model: {
            group: over_seeds(lambda r, m=model, g=group: r['group_frame_ap'][m][g])
            for group in GROUPS
        }
        for model in models
    }
    frame_key = table_columns[0][0]
    per_seed_frame_map, checks = {}, {}
    for seed, report in loaded.items():
        per_seed_frame_map[str(seed)] = {
            model: report['table'][model][frame_key] for model in models
        }
        checks[str(seed)] = claim_differences(report['table'], report['group_frame_ap'], frame_key)
    per_seed_frame_map['mean'] = {model: table[model][frame_key][0] for model in models}
    checks['mean'] = {
        key: float(np.mean([checks[str(seed)][key] for seed in seeds]))
        for key in checks[str(seeds[0])]
    }
    summary = dict(
        seeds=seeds,
        quick=quick,
        claims=check_claims(checks, seeds),
        table=table,
        per_class_frame_ap=per_class,
        group_frame_ap=group_ap,
        per_seed_frame_map=per_seed_frame_map,
        checks=checks,
        class_groups=groups,
        seed_reports={str(seed): path for seed, path in seed_reports.items()},
    )
    outputs = report_paths(work_dir)
    first_seed_outputs = report_paths(osp.dirname(seed_reports[seeds[0]]))
    for key in ('annotated_mp4', 'annotated_gif'):
        shutil.copyfile(first_seed_outputs[key], outputs[key])
    with open(outputs['results_json'], 'w', encoding='utf-8') as f:
        json.dump(summary, f, indent=2)
    with open(outputs['results_md'], 'w', encoding='utf-8') as f:
        f.write(summary_markdown(summary, rows, table_columns))
    plot_per_class(
        {m: {n: v[0] for n, v in per_class[m].items()} for m in models},
        groups,
        outputs['per_class_png'],
        errors={m: {n: v[1] for n, v in per_class[m].items()} for m in models},
        title=f'toy-sports held-out videos: per-class frame AP, mean ± std over seeds {seeds}',
    )
    plot_training_curves(
        [osp.join(osp.dirname(seed_reports[seed]), model) for seed in seeds for model in models],
        [f'{model} (seed {seed})' for seed in seeds for model in models],
        outputs['training_curves_png'],
        title=f'toy-sports: training of the three detectors, seeds {seeds}',
        groups=[model for _ in seeds for model in models],
    )
    return outputs
