"""The main job (``make demo``): PCCA end to end on generated toy-sports data, on a CPU.

Per seed (default three, one process each, in ``<work-dir>/seed_<S>/``):
generate toy-sports data, pretrain the tiny SlowFast by clip classification,
train the linear head, the PCCA head and PCCA's phase 2 on that frozen
backbone, test each on every frame of the held-out videos, and write a
report; then ``<work-dir>/results.md`` etc. combine the seeds (mean and std)
and the paper's claims are printed seed by seed as PASS / FAIL lines. The
full demo exits with an error (status 1) naming the failed claims when one
fails, after writing every output; ``--quick`` prints them without enforcing
them. Every stage is resumable. The pipeline is :mod:`pcca_plugin.demo.pipeline`
(its docstring lists the stages); ``docs/results.md`` shows a run.

Usage::

    python tools/run_demo.py [--work-dir work_dirs/demo] [--seeds 0 1 2] [--jobs N] [--quick]
"""

import argparse
import os.path as osp
from typing import Dict, List, Optional

import pcca_plugin
from pcca_plugin.demo.pipeline import SINGLE_SEED_FLAG, run_demo, run_seed
from pcca_plugin.demo.settings import DEFAULT_WORK_DIR, FULL_SEEDS, QUICK_SEEDS, DemoSettings
from pcca_plugin.utils.cli import add_debug_argument, run_cli


def main(argv: Optional[List[str]] = None) -> Dict[str, str]:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default=DEFAULT_WORK_DIR)
    parser.add_argument(
        '--seeds',
        type=int,
        nargs='+',
        default=None,
        help=f'seeds of data and training (default {FULL_SEEDS}; --quick: {QUICK_SEEDS}); '
        'the report gives the mean and std over them',
    )
    parser.add_argument(
        '--jobs', type=int, default=None, help='seeds run at the same time (default: all)'
    )
    parser.add_argument(
        '--quick', action='store_true', help='a ~3-minute version (less data, fewer epochs)'
    )
    # One seed's process (pcca_plugin.demo.pipeline.run_seeds_in_parallel starts it).
    parser.add_argument(SINGLE_SEED_FLAG, type=int, default=None, help=argparse.SUPPRESS)
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    pcca_plugin.register_all_modules()
    if args.single_seed is not None:
        settings = DemoSettings.quick() if args.quick else DemoSettings.full()
        return run_seed(args.single_seed, osp.abspath(args.work_dir), settings)
    return run_demo(args.work_dir, seeds=args.seeds, jobs=args.jobs, quick=args.quick)


if __name__ == '__main__':
    run_cli(main)
