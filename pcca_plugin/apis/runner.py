"""Training and testing a config with mmengine's ``Runner``: what ``tools/{train,test}.py`` run.

As mmaction2 keeps the inference behind its demos in ``mmaction/apis``, this
module keeps the two Runner runs, so that the tools are argument parsing and a
script or a test runs the same thing in-process::

    import pcca_plugin
    from pcca_plugin.apis import run_test

    pcca_plugin.register_all_modules()  # once, before building from a config
    metrics = run_test('configs/pcca/CONFIG.py', 'CKPT.pth', tta=True)

Both runs read the config, merge ``cfg_options`` (``--cfg-options``), set the
work dir and the launcher (``'pytorch'`` under torchrun, ``'slurm'`` under
srun; without CUDA :func:`~pcca_plugin.engine.configure_launcher` switches to
gloo, ``docs/inference.md``), build the Runner and destroy the process group
after a successful run. A config may name another registered Runner class
with ``runner_type``, as mmengine's own ``tools/train.py`` allows.

Testing options, as in mmdet: ``format_only`` makes every
``MultiSportsTubeMetric`` write the submission files (``PREFIX_frame_detections.pkl``,
``PREFIX_videos.json``, ``PREFIX_video_detections.pkl``) without GT or mAP
(``docs/submission.md``); ``test_split`` also swaps in the config's
``test_split_dataset``; ``tta`` wraps the model in the config's ``tta_model``
(:func:`pcca_plugin.models.tta.apply_tta`); ``archive`` also packs the
submission files into ``PREFIX_submission.zip``, the archive the 2021
challenge server read (:mod:`pcca_plugin.evaluation.functional.archive`).
"""

import argparse
import os
import os.path as osp
from typing import Dict, List, Optional

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..engine.amp import enable_amp
from ..engine.distributed import (
    LAUNCHERS,
    check_slurm_environment,
    configure_launcher,
    destroy_process_group_after_success,
)
from ..models.tta import apply_tta
from ..registration import build_registered

#: ``resume`` value that resumes from the latest checkpoint of the work dir.
RESUME_LATEST = 'auto'
#: ``type`` of the metric that ``format_only`` / the detection dumps configure.
TUBE_METRIC = 'MultiSportsTubeMetric'
#: Work dirs of configs without one: ``work_dirs/<config name>``.
DEFAULT_WORK_DIRS = 'work_dirs'


def add_runner_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options ``tools/train.py`` and ``tools/test.py`` share; returns the parser."""
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
    return parser


def load_run_config(
    config: str,
    work_dir: Optional[str] = None,
    cfg_options: Optional[Dict] = None,
    launcher: str = 'none',
    local_rank: int = 0,
) -> Config:
    """The config file with ``cfg_options`` merged, its work dir and launcher set.

    Args:
        config: the config file.
        work_dir: overrides the config's; default ``work_dirs/<config name>``.
        cfg_options: ``{'dotted.key': value}`` entries to merge (``--cfg-options``).
        launcher: one of :data:`~pcca_plugin.engine.distributed.LAUNCHERS`.
        local_rank: this process's local rank when ``LOCAL_RANK`` is not set.

    Raises:
        FileNotFoundError: no such config file.
        RuntimeError: ``launcher='slurm'`` outside an srun task (names the variables).
    """
    if not osp.isfile(config):
        raise FileNotFoundError(f'{config}: no such config file')
    if launcher == 'slurm':  # before any work: srun's variables are needed
        check_slurm_environment()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(local_rank)
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join(DEFAULT_WORK_DIRS, osp.splitext(osp.basename(config))[0])
    return configure_launcher(cfg, launcher)


def build_runner(cfg: Config) -> Runner:
    """The Runner of ``cfg`` (or of its ``runner_type``), built from mmengine's ``RUNNERS``.

    A model type missing because the plugin's components are not registered
    raises a ``KeyError`` that says to call ``pcca_plugin.register_all_modules()``.
    """
    return build_registered(RUNNERS, cfg)


def tube_metric_configs(cfg: Config, option: str) -> List[Dict]:
    """The ``MultiSportsTubeMetric`` entries of ``cfg.test_evaluator``; ``option`` names the asker.

    Raises:
        ValueError: the evaluator has none.
    """
    evaluators = cfg.test_evaluator
    evaluators = evaluators if isinstance(evaluators, (list, tuple)) else [evaluators]
    metrics = [evaluator for evaluator in evaluators if evaluator.get('type') == TUBE_METRIC]
    if not metrics:
        raise ValueError(f'{cfg.filename}: {option} needs a {TUBE_METRIC} in test_evaluator')
    return metrics


def use_test_split(cfg: Config) -> Config:
    """Test on ``cfg.test_split_dataset`` (the prepared challenge test videos, no GT)."""
    if 'test_split_dataset' not in cfg:
        raise ValueError(
            f"{cfg.filename}: --test-split tests on the config's test_split_dataset, which it "
            'lacks; inherit configs/_base_/datasets/multisports_rgb.py or point '
            'test_dataloader.dataset.ann_file/proposal_file at the files of '
            'prepare_multisports.py --split test and use --format-only'
        )
    cfg.test_dataloader.dataset = cfg.test_split_dataset
    return cfg


def set_format_only(cfg: Config, outfile_prefix: Optional[str], archive: bool = False) -> Config:
    """Make every ``MultiSportsTubeMetric`` of ``test_evaluator`` write a submission, GT-free.

    With ``archive`` the metrics also write ``PREFIX_submission.zip`` (their ``archive``).
    """
    for metric in tube_metric_configs(cfg, '--format-only'):
        metric['format_only'] = True
        if archive:
            metric['archive'] = True
        metric['gt_file'] = None  # the video list comes from the dataset
        if outfile_prefix:
            metric['outfile_prefix'] = outfile_prefix
        if not metric.get('outfile_prefix'):
            raise ValueError(
                f'{cfg.filename}: --format-only writes the submission files to '
                'test_evaluator.outfile_prefix, which is not set; pass --outfile-prefix '
                'PREFIX (e.g. work_dirs/submission/pcca)'
            )
    return cfg


def set_detection_dumps(
    cfg: Config, frame_detections: Optional[str], video_detections: Optional[str]
) -> Config:
    """Make every ``MultiSportsTubeMetric`` also write its frame / video detections there."""
    for metric in tube_metric_configs(cfg, '--dump-*-detections'):
        if frame_detections:
            metric['dump_frame_detections'] = frame_detections
        if video_detections:
            metric['dump_video_detections'] = video_detections
    return cfg


def run_train(
    config: str,
    work_dir: Optional[str] = None,
    cfg_options: Optional[Dict] = None,
    launcher: str = 'none',
    local_rank: int = 0,
    resume: Optional[str] = None,
    amp: bool = False,
) -> Runner:
    """Train ``config``; returns the Runner after ``Runner.train()``.

    Args:
        config, work_dir, cfg_options, launcher, local_rank: see :func:`load_run_config`.
        resume: a checkpoint to resume from, :data:`RESUME_LATEST` for the latest one of
            the work dir, or None (no resuming).
        amp: mixed precision (float16 on CUDA, bfloat16 on CPU,
            :func:`~pcca_plugin.engine.amp.enable_amp`); the config's ``amp=True`` does the same.
    """
    cfg = load_run_config(config, work_dir, cfg_options, launcher, local_rank)
    if amp:
        enable_amp(cfg)
    elif cfg.get('amp', False):
        enable_amp(cfg, f'{config}: amp=True')
    if resume == RESUME_LATEST:
        cfg.resume, cfg.load_from = True, None
    elif resume is not None:
        cfg.resume, cfg.load_from = True, resume
    runner = build_runner(cfg)
    runner.train()
    destroy_process_group_after_success()
    return runner


def run_test(
    config: str,
    checkpoint: str,
    work_dir: Optional[str] = None,
    cfg_options: Optional[Dict] = None,
    launcher: str = 'none',
    local_rank: int = 0,
    tta: bool = False,
    format_only: bool = False,
    test_split: bool = False,
    outfile_prefix: Optional[str] = None,
    dump_frame_detections: Optional[str] = None,
    dump_video_detections: Optional[str] = None,
    archive: bool = False,
) -> Dict[str, float]:
    """Test ``checkpoint`` with ``config``; returns the metrics (``{}`` when ``format_only``).

    Args:
        config, work_dir, cfg_options, launcher, local_rank: see :func:`load_run_config`.
        checkpoint: the checkpoint file.
        tta: test-time augmentation (:func:`pcca_plugin.models.tta.apply_tta`).
        format_only: write the submission files to ``outfile_prefix`` (no GT read, no mAP).
        test_split: test on the config's ``test_split_dataset``; implies ``format_only``.
        outfile_prefix: the submission files' path prefix (with ``format_only`` only).
        dump_frame_detections: also write the frame detections here (``tools/ensemble.py``).
        dump_video_detections: also write the linked tubes here.
        archive: with ``format_only``, also write ``PREFIX_submission.zip`` (the
            metric's ``archive``: with the submission files, on the main process).

    Raises:
        FileNotFoundError: no such checkpoint or config file.
        ValueError: options that do not go together, or a config that lacks what they need;
            raised before the Runner starts.
    """
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'{checkpoint}: no such checkpoint file')
    format_only = format_only or test_split
    if format_only and (dump_frame_detections or dump_video_detections):
        raise ValueError('--format-only writes PREFIX_*_detections.pkl; drop --dump-*-detections')
    if outfile_prefix and not format_only:
        raise ValueError('--outfile-prefix is for --format-only / --test-split')
    if archive and not format_only:
        raise ValueError(
            '--zip archives the submission files of --format-only / --test-split; add one '
            'of them and --outfile-prefix PREFIX'
        )
    cfg = load_run_config(config, work_dir, cfg_options, launcher, local_rank)
    cfg.load_from = checkpoint
    if test_split:
        use_test_split(cfg)
    if format_only:
        set_format_only(cfg, outfile_prefix, archive)
    if dump_frame_detections or dump_video_detections:
        set_detection_dumps(cfg, dump_frame_detections, dump_video_detections)
    if tta:
        apply_tta(cfg)
    runner = build_runner(cfg)
    metrics = runner.test()
    destroy_process_group_after_success()
    return metrics
