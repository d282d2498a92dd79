"""Evaluate MultiSports detections from files, with the official command-line shape.

Usage::

    python tools/eval_multisports.py frameAP GT.pkl FRAME_DETS.pkl [-t 0.5]
    python tools/eval_multisports.py videoAP GT.pkl VIDEO_DETS.pkl [-t 0.5]
    python tools/eval_multisports.py videoAP_all GT.pkl VIDEO_DETS.pkl
    python tools/eval_multisports.py videoAP_error GT.pkl VIDEO_DETS.pkl [-t 0.5]
    python tools/eval_multisports.py link GT.pkl FRAME_DETS.pkl -o VIDEO_DETS.pkl
    python tools/eval_multisports.py server2021 GT.pkl SUBMISSION [--json OUT.json]

``server2021`` scores a submission (a folder or a ``.zip`` holding
``frame_detections.pkl`` and ``video_detections.pkl``) as the 2021 challenge
server did, the scorer of the PCCA paper's test figures (``docs/protocol.md``);
its ``--json`` holds exactly the six figures, in percent: ``F@0.5``, ``V@0.2``,
``V@0.5``, ``V@0.05:0.45``, ``V@0.5:0.95``, ``V@0.1:0.9``.

Options: ``--json OUT.json`` writes every figure (overall and per class);
``--plot DIR`` writes a per-class AP bar chart and PR curves as PNG;
``--tie-order stable`` ranks tied scores in input order (the same figures on
every machine) instead of numpy's default sort as the official tool does
(``docs/protocol.md``, "Tied scores"). Pickles are read with a restricted
unpickler (numpy arrays and builtin containers only) and written readable by
numpy 1.x and 2.x; frame detections may also be an ``(M, 8)`` ``.npy`` file,
which is memory-mapped. Bad input stops with one line naming the file, the
field and the fix (``--debug`` shows the traceback).

Only numpy (and matplotlib for ``--plot``) is imported: no torch and no
OpenMMLab package, so a run costs its evaluation, not imports. The tasks:
:mod:`pcca_plugin.evaluation.tasks`.
"""

import argparse
import time

from pcca_plugin.evaluation.functional import MIN_TUBE_LENGTH, MIN_TUBE_SCORE, TIE_ORDERS
from pcca_plugin.evaluation.tasks import TASKS, run_task, write_json
from pcca_plugin.utils.cli import add_debug_argument, run_cli


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('task', choices=TASKS, help='what to compute')
    parser.add_argument('groundtruth', help='multisports_GT.pkl')
    parser.add_argument(
        'detections',
        help='frame_detections.pkl (frameAP, link), video_detections.pkl (videoAP*), or a '
        'submission folder or .zip (server2021)',
    )
    parser.add_argument('-t', '--thr', type=float, default=0.5, help='IoU threshold (default 0.5)')
    parser.add_argument('-o', '--out', help='link: where to write video_detections.pkl')
    parser.add_argument(
        '--len-thr', type=int, default=MIN_TUBE_LENGTH, help='link: minimum tube length'
    )
    parser.add_argument(
        '--score-thr', type=float, default=MIN_TUBE_SCORE, help='link: minimum tube score'
    )
    parser.add_argument(
        '--json',
        help='write every figure (overall and per class) and the time spent to this JSON file',
    )
    parser.add_argument(
        '--plot', help='write per-class AP bars and PR curves (PNG) into this folder'
    )
    parser.add_argument(
        '--tie-order',
        choices=TIE_ORDERS,
        default='official',
        help="official: rank tied scores with numpy's default argsort, as the official tool "
        '(figures then match it under the same numpy build); stable: ties in input order, '
        'the same figures on every machine',
    )
    parser.add_argument('--no-progress', action='store_true', help='hide progress bars')
    args = add_debug_argument(parser).parse_args(argv)
    if args.task == 'link' and not args.out:
        parser.error('link needs -o VIDEO_DETS.pkl')
    return args


def main(argv=None) -> dict:
    """Run one task; returns the report (also written with ``--json``).

    The report's ``seconds`` is the time spent in this function: reading the
    files, evaluating, writing the outputs (not the interpreter start or the
    imports).
    """
    begin = time.perf_counter()
    args = parse_args(argv)
    report, lines = run_task(
        args.task,
        args.groundtruth,
        args.detections,
        thr=args.thr,
        out=args.out,
        len_thr=args.len_thr,
        score_thr=args.score_thr,
        plot_dir=args.plot,
        tie_order=args.tie_order,
        progress=not args.no_progress,
    )
    print('\n'.join(lines))
    report['seconds'] = time.perf_counter() - begin
    if args.json:
        # server2021: the six figures under the server's names, nothing else.
        write_json(report['server2021'] if args.task == 'server2021' else report, args.json)
    return report


if __name__ == '__main__':
    run_cli(main)
