"""Training curves of mmengine runs: loss, lr and every validation metric, per epoch.

Reads what mmengine's ``LocalVisBackend`` (``vis_backends`` of
``configs/_base_/default_runtime.py``) writes during a run:
``WORK_DIR/<timestamp>/vis_data/scalars.json``, one JSON object a line.

* A training line (``LoggerHook``, every ``interval`` iterations) holds
  ``epoch`` (epoch-based loops), ``iter`` (the global iteration, from 1),
  ``step`` (the same), ``lr``, ``loss`` and the loss terms (``loss_*``), the
  head's training figures (recall/precision of mmaction2's AVA head, not
  drawn) and timings (``time``, ``data_time``, not drawn).
* A validation line (after each validation epoch) holds the metrics and
  ``step``: the epoch (epoch-based loops) or the iteration.

Every folder under ``WORK_DIR`` with a ``vis_data/scalars.json`` is read, in
the order of its timestamp name, so that a resumed run (mmengine starts a new
timestamp folder) continues its curves; a step logged twice keeps its last
value. A training line sits at ``iter / iterations per epoch`` on the epoch
axis; the iterations per epoch are the smallest count consistent with every
logged ``(epoch, iter)`` pair (exact when each epoch's last iteration is
logged, e.g. ``LoggerHook(ignore_last=False)``; otherwise at most one logging
interval short). Runs of iteration-based loops are drawn over iterations.

One panel per quantity (loss terms, lr, each validation metric), one colour
per run (the run's folder name unless a label is given), so that runs
can be compared, e.g. the demo's linear, PCCA and phase-2 runs (the command
line is ``tools/plot_curves.py``, moved here from that script)::

    python tools/plot_curves.py work_dirs/demo/seed_0/{linear,pcca,decoupled} --out curves.png
"""

import glob
import json
import math
import os
import os.path as osp
import tempfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

#: mmengine's per-run scalar log, relative to a run's timestamp folder.
SCALARS_FILE = osp.join('vis_data', 'scalars.json')
#: Keys of a scalar line that are bookkeeping, not curves.
BOOKKEEPING_KEYS = frozenset({'step', 'epoch', 'iter', 'time', 'data_time', 'memory', 'eta'})
#: Prefixes that mmengine's ``LogProcessor(log_with_hierarchy=True)`` adds.
MODE_PREFIXES = ('train/', 'val/')
#: The key marking a training line (validation lines have no iteration).
TRAIN_MARKER = 'iter'
#: Panels per row of the figure, the size of one panel, and the room of the legend
#: under the panels: a margin plus one row height per row of runs (inches).
PANELS_PER_ROW = 3
PANEL_SIZE = (4.2, 3.0)
LEGEND_MARGIN = 0.2
LEGEND_ROW_HEIGHT = 0.22
#: At most this many columns in the legend (one group per column with ``groups``).
LEGEND_COLUMNS = 4
DPI = 100
#: Line styles of the runs of one group (e.g. the seeds of one model).
GROUP_LINESTYLES = ('-', '--', ':', '-.')


class ScalarsNotFoundError(FileNotFoundError):
    """A work dir holds no ``vis_data/scalars.json``."""


@dataclass
class RunCurves:
    """The curves of one run.

    Attributes:
        label: the run's name in the legend.
        x_unit: ``'epoch'`` or ``'iteration'``.
        train: quantity -> ``(x (P,), values (P,))`` of the training lines.
        val: metric -> ``(x (E,), values (E,))`` of the validation lines.
        files: the ``scalars.json`` files read, oldest first.
    """

    label: str
    x_unit: str
    train: Dict[str, Tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    val: Dict[str, Tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    files: List[str] = field(default_factory=list)


def find_scalar_files(work_dir: str) -> List[str]:
    """The ``scalars.json`` files of a run, oldest timestamp folder first.

    ``work_dir`` is a run's work dir (``<work_dir>/<timestamp>/vis_data/scalars.json``),
    one timestamp folder, its ``vis_data`` folder, or a ``scalars.json`` file.

    Raises:
        ScalarsNotFoundError: there is none; the message names the folder and
            says how to get one.
    """
    if osp.isfile(work_dir):
        return [work_dir]
    candidates = [
        osp.join(work_dir, 'scalars.json'),
        osp.join(work_dir, SCALARS_FILE),
    ]
    found = [path for path in candidates if osp.isfile(path)]
    if not found:
        found = sorted(
            glob.glob(osp.join(glob.escape(work_dir), '*', SCALARS_FILE)),
            key=lambda path: osp.basename(osp.dirname(osp.dirname(path))),
        )
    if not found:
        reason = 'no such folder' if not osp.isdir(work_dir) else 'no run logged scalars there'
        raise ScalarsNotFoundError(
            f'{work_dir}: no {SCALARS_FILE} in it or in its timestamp folders ({reason}). '
            'mmengine writes <work_dir>/<timestamp>/vis_data/scalars.json while a run trains '
            "with the LocalVisBackend (vis_backends=[dict(type='LocalVisBackend')], as in "
            'configs/_base_/default_runtime.py) and logs at least one iteration; train one '
            'with `python tools/train.py CONFIG --work-dir WORK_DIR` and pass that WORK_DIR.'
        )
    return found


def _read_lines(path: str) -> List[Dict]:
    records = []
    with open(path, encoding='utf-8') as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f'{path}: line {number} is not JSON ({exc.msg}); the run may have been '
                    'killed while writing it: delete that line and plot again'
                ) from None
            if not isinstance(record, dict) or 'step' not in record:
                raise ValueError(
                    f'{path}: line {number} is not an mmengine scalar record (a JSON object '
                    "with a 'step' key)"
                )
            records.append(record)
    return records


def _strip_prefix(key: str) -> str:
    for prefix in MODE_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def _scalars(record: Dict) -> Dict[str, float]:
    """The record's curve values (numbers only, bookkeeping keys dropped)."""
    values = {}
    for key, value in record.items():
        name = _strip_prefix(key)
        if name in BOOKKEEPING_KEYS or isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            values[name] = float(value)
    return values


def is_lr_key(key: str) -> bool:
    """A learning rate: ``lr``, or one param group's (``<name>_lr``, ``<name>/lr``)."""
    return key == 'lr' or key.endswith('_lr') or key.endswith('/lr')


def is_drawn_train_key(key: str) -> bool:
    """Training quantities drawn: the losses and the learning rates."""
    return 'loss' in key or is_lr_key(key)


def iterations_per_epoch(pairs: Sequence[Tuple[int, int]]) -> Optional[int]:
    """The smallest iterations-per-epoch count consistent with logged ``(epoch, iter)``.

    A line of epoch ``e`` at global iteration ``i`` (from 1) satisfies
    ``(e - 1) * n < i <= e * n``, so ``n >= i / e``; the smallest such ``n`` is
    returned (None without pairs).
    """
    if not pairs:
        return None
    return max(math.ceil(it / epoch) for epoch, it in pairs if epoch > 0)


def load_run(work_dir: str, label: Optional[str] = None) -> RunCurves:
    """Read a run's curves (see the module docstring for the layout).

    Args:
        work_dir: see :func:`find_scalar_files`.
        label: the run's name (default: the folder name).
    """
    files = find_scalar_files(work_dir)
    train_lines: Dict[int, Dict] = {}  # global iteration -> record (last wins)
    val_lines: Dict[int, Dict] = {}  # step -> record (last wins)
    for path in files:
        for record in _read_lines(path):
            if TRAIN_MARKER in record:
                train_lines[int(record[TRAIN_MARKER])] = record
            else:
                val_lines[int(record['step'])] = record
    by_epoch = bool(train_lines) and all('epoch' in r for r in train_lines.values())
    per_epoch = (
        iterations_per_epoch([(int(r['epoch']), it) for it, r in train_lines.items()])
        if by_epoch
        else None
    )
    run = RunCurves(
        label=label or default_label(work_dir),
        x_unit='epoch' if by_epoch or (not train_lines and val_lines) else 'iteration',
        files=files,
    )
    train_series: Dict[str, List[Tuple[float, float]]] = {}
    for iteration in sorted(train_lines):
        x = iteration / per_epoch if per_epoch else float(iteration)
        for key, value in _scalars(train_lines[iteration]).items():
            if is_drawn_train_key(key):
                train_series.setdefault(key, []).append((x, value))
    val_series: Dict[str, List[Tuple[float, float]]] = {}
    for step in sorted(val_lines):
        for key, value in _scalars(val_lines[step]).items():
            val_series.setdefault(key, []).append((float(step), value))
    run.train = {key: _arrays(points) for key, points in train_series.items()}
    run.val = {key: _arrays(points) for key, points in val_series.items()}
    return run


def _arrays(points: List[Tuple[float, float]]) -> Tuple[np.ndarray, np.ndarray]:
    array = np.asarray(points, dtype=np.float64)  # (P, 2)
    return array[:, 0], array[:, 1]


def default_label(work_dir: str) -> str:
    """A run's folder name (for a ``vis_data`` / ``scalars.json`` path: its work dir's)."""
    path = osp.normpath(osp.abspath(work_dir))
    if osp.isfile(path):
        path = osp.dirname(path)
    if osp.basename(path) == 'vis_data':
        path = osp.dirname(osp.dirname(path))
    return osp.basename(path)


def unique_labels(work_dirs: Sequence[str]) -> List[str]:
    """Folder names; where two runs share one, the parent folder is added (``seed_0/pcca``)."""
    labels = [default_label(w) for w in work_dirs]
    if len(set(labels)) == len(labels):
        return labels
    return [
        f'{osp.basename(osp.dirname(osp.normpath(osp.abspath(w))))}/{label}'
        for w, label in zip(work_dirs, labels)
    ]


def panel_order(runs: Sequence[RunCurves]) -> List[Tuple[str, str]]:
    """``(kind, key)`` of every panel: ``loss`` first, the loss terms, lr, then metrics."""
    train_keys = {key for run in runs for key in run.train}
    losses = sorted((k for k in train_keys if 'loss' in k), key=lambda k: (k != 'loss', k))
    rates = sorted(k for k in train_keys if 'loss' not in k)
    metrics = sorted({key for run in runs for key in run.val})
    return [('train', k) for k in losses + rates] + [('val', k) for k in metrics]


def plot_curves(
    runs: Sequence[RunCurves],
    out: str,
    title: Optional[str] = None,
    groups: Optional[Sequence[str]] = None,
) -> List[str]:
    """Draw every run's curves into one PNG, one panel per quantity.

    Args:
        runs: the runs (:func:`load_run`), one colour each.
        out: PNG to write (through a temporary file: an existing figure is
            replaced only by a complete one).
        title: the figure's title.
        groups: one group name per run; runs of a group share a colour and
            differ by line style (e.g. the seeds of one model).

    Returns:
        The panel titles, in order.
    """
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    if not runs:
        raise ValueError('no run to plot')
    panels = panel_order(runs)
    if not panels:
        raise ValueError(
            'the runs logged no loss, lr or validation metric: '
            + ', '.join(f'{run.label} ({run.files[0]})' for run in runs)
        )
    if groups is not None and len(groups) != len(runs):
        raise ValueError(f'{len(groups)} groups for {len(runs)} runs')
    colour_cycle = plt.rcParams['axes.prop_cycle'].by_key()['color']
    keys = list(dict.fromkeys(groups)) if groups is not None else [run.label for run in runs]
    styles = []
    seen: Dict[str, int] = {}
    for index, run in enumerate(runs):
        key = groups[index] if groups is not None else run.label
        styles.append(
            dict(
                color=colour_cycle[keys.index(key) % len(colour_cycle)],
                linestyle=GROUP_LINESTYLES[seen.get(key, 0) % len(GROUP_LINESTYLES)],
            )
        )
        seen[key] = seen.get(key, 0) + 1
    columns = min(PANELS_PER_ROW, len(panels))
    legend_columns = min(len(keys) if groups is not None else len(runs), LEGEND_COLUMNS)
    legend_room = LEGEND_MARGIN + LEGEND_ROW_HEIGHT * math.ceil(len(runs) / legend_columns)
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * rows + legend_room),
        squeeze=False,
    )
    units = sorted({run.x_unit for run in runs})
    titles = []
    for ax, (kind, key) in zip(axes.flat, panels):
        for run, style in zip(runs, styles):
            series = (run.train if kind == 'train' else run.val).get(key)
            if series is None:
                continue
            x, y = series
            marker = 'o' if kind == 'val' or len(x) == 1 else None
            # A learning rate holds until the next logged value: drawn as steps.
            drawstyle = 'steps-post' if is_lr_key(key) else 'default'
            ax.plot(
                x, y, marker=marker, markersize=4, drawstyle=drawstyle, label=run.label, **style
            )
        panel_title = key if kind == 'train' else f'{key} (validation)'
        titles.append(panel_title)
        ax.set_title(panel_title, fontsize=10)
        ax.set_xlabel(' / '.join(units))
        if is_lr_key(key):
            ax.ticklabel_format(axis='y', style='sci', scilimits=(-3, 3))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    for ax in list(axes.flat)[1 : len(panels)]:  # runs missing from the first panel
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    # The legend lists the runs group by group (e.g. every seed of one model together).
    group_of = {
        run.label: keys.index(groups[i] if groups is not None else run.label)
        for i, run in enumerate(runs)
    }
    order = sorted(range(len(labels)), key=lambda i: (group_of.get(labels[i], 0), i))
    handles, labels = [handles[i] for i in order], [labels[i] for i in order]
    fig.legend(handles, labels, loc='lower center', ncol=legend_columns, fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, legend_room / (PANEL_SIZE[1] * rows + legend_room), 1, 1))
    out_dir = osp.dirname(osp.abspath(out))
    os.makedirs(out_dir, exist_ok=True)
    handle, tmp = tempfile.mkstemp(suffix='.png', dir=out_dir)
    os.close(handle)
    try:
        fig.savefig(tmp, dpi=DPI)
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        if osp.exists(tmp):
            os.remove(tmp)
    return titles
