"""Train a pcca_plugin config with mmengine's Runner, on one process or several.

Usage::

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
    bash tools/dist_train.sh CONFIG NUM_PROCS [same options]      # torchrun, --launcher pytorch
    bash tools/slurm_train.sh PARTITION JOB CONFIG [same options]  # srun, --launcher slurm

On a machine without CUDA the distributed launchers fall back to the ``gloo``
backend, initialise the process group themselves (mmengine 0.10's
``init_dist`` calls ``torch.cuda.set_device``) and use a DDP wrapper without
``device_ids`` (mmengine passes ``device_ids=[LOCAL_RANK]``, which torch
refuses for CPU modules), so the same commands train on CPU processes.
"""

import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import pcca_plugin  # noqa: E402,F401  (registers components, applies compat fixes)
from pcca_plugin.engine.amp import enable_amp  # noqa: E402
from pcca_plugin.engine.distributed import (  # noqa: E402
    LAUNCHERS,
    check_slurm_environment,
    configure_launcher,
    destroy_process_group_after_success,
)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by ``train.py`` and ``test.py``."""
    parser.add_argument('--work-dir', help='folder for logs and checkpoints')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. train_cfg.max_epochs=1 (key=value pairs)',
    )
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK instead.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(args: argparse.Namespace) -> Config:
    """Config file + ``--cfg-options`` + work dir + launcher settings."""
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'{args.config}: no such config file')
    if args.launcher == 'slurm':  # before any work: srun's variables are needed
        check_slurm_environment()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0])
    return configure_launcher(cfg, args.launcher)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='training config file')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        help='resume from CKPT, or from the latest checkpoint of the work dir when no CKPT',
    )
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed precision (float16 on CUDA, bfloat16 on CPU); the config switch amp=True '
        'does the same',
    )
    add_common_arguments(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Runner:
    """Build the Runner from the config and train; return the Runner."""
    args = parse_args(argv)
    cfg = load_config(args)
    if args.amp or cfg.get('amp', False):
        enable_amp(cfg, 'tools/train.py --amp' if args.amp else f'{args.config}: amp=True')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    runner = Runner.from_cfg(cfg)
    runner.train()
    destroy_process_group_after_success()
    return runner


if __name__ == '__main__':
    main()
