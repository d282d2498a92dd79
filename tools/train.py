"""Train a pcca_plugin config with mmengine's Runner, on one process or several.

Usage::

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
    bash tools/dist_train.sh CONFIG NUM_PROCS [same options]      # torchrun, --launcher pytorch
    bash tools/slurm_train.sh PARTITION JOB CONFIG [same options]  # srun, --launcher slurm

On a machine without CUDA the distributed launchers fall back to the ``gloo``
backend, so the same commands train on CPU processes
(:mod:`pcca_plugin.engine.distributed`). The run is
:func:`pcca_plugin.apis.run_train`.
"""

import argparse
from typing import List, Optional

from mmengine.runner import Runner

import pcca_plugin
from pcca_plugin.apis import RESUME_LATEST, add_runner_arguments, run_train
from pcca_plugin.utils.cli import add_debug_argument, run_cli


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='training config file')
    parser.add_argument(
        '--resume',
        nargs='?',
        const=RESUME_LATEST,
        help='resume from CKPT, or from the latest checkpoint of the work dir when no CKPT',
    )
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed precision (float16 on CUDA, bfloat16 on CPU); the config switch amp=True '
        'does the same',
    )
    add_runner_arguments(parser)
    return add_debug_argument(parser).parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Runner:
    """Build the Runner from the config and train; return the Runner."""
    args = parse_args(argv)
    pcca_plugin.register_all_modules()
    return run_train(
        args.config,
        work_dir=args.work_dir,
        cfg_options=args.cfg_options,
        launcher=args.launcher,
        local_rank=args.local_rank,
        resume=args.resume,
        amp=args.amp,
    )


if __name__ == '__main__':
    run_cli(main)
