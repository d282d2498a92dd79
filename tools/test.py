"""Test a checkpoint with mmengine's Runner, optionally with test-time augmentation.

Usage::

    python tools/test.py CONFIG CHECKPOINT [--tta] [--work-dir DIR] [--cfg-options k=v ...]
        [--dump-frame-detections FRAME.pkl] [--dump-video-detections VIDEO.pkl]
    # the challenge test split (no GT): write the submission files, no mAP
    python tools/test.py CONFIG CHECKPOINT --test-split --outfile-prefix PREFIX [--tta]
    python tools/test.py CONFIG CHECKPOINT --format-only --outfile-prefix PREFIX
    bash tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [same options]

``--tta`` works as in mmdet and mmpretrain: the config's ``tta_model`` wraps
``model`` and ``tta_pipeline`` replaces the test pipeline. A config without
them gets :class:`~pcca_plugin.models.tta.SpatioTemporalTTAModel` with the
default views (short sides 256 and 360, with and without horizontal flip) and
a TTA pipeline derived from its test pipeline.

``--format-only`` follows mmdet: the config's ``MultiSportsTubeMetric`` gets
``format_only=True``, no GT file, and ``outfile_prefix``; it writes
``PREFIX_frame_detections.pkl``, ``PREFIX_videos.json`` and
``PREFIX_video_detections.pkl`` (``docs/submission.md``). ``--test-split``
also tests on the config's ``test_split_dataset`` (the videos prepared with
``prepare_multisports.py --split test``).
"""

import argparse
import os.path as osp
import sys
from typing import List, Optional

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS_DIR = osp.dirname(osp.abspath(__file__))
for path in (REPO_ROOT, TOOLS_DIR):
    if path not in sys.path:
        sys.path.insert(0, path)

from mmengine.config import Config, ConfigDict  # noqa: E402
from mmengine.logging import print_log  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from train import add_common_arguments, load_config  # noqa: E402

from pcca_plugin.engine.distributed import destroy_process_group_after_success  # noqa: E402
from pcca_plugin.models.tta import DEFAULT_TTA_SCALES, build_tta_pipeline  # noqa: E402

#: ``type`` of the TTA model used when the config has no ``tta_model``.
DEFAULT_TTA_MODEL = dict(type='SpatioTemporalTTAModel', scales=DEFAULT_TTA_SCALES, flip=True)


def innermost_dataset(dataset_cfg: ConfigDict) -> ConfigDict:
    """The dataset config under any wrappers (``dataset=dict(dataset=...)``)."""
    while 'dataset' in dataset_cfg:
        dataset_cfg = dataset_cfg['dataset']
    return dataset_cfg


def apply_tta(cfg: Config) -> Config:
    """Wrap ``cfg.model`` in ``cfg.tta_model`` and test with ``cfg.tta_pipeline``.

    Missing pieces get defaults: ``tta_model`` = :data:`DEFAULT_TTA_MODEL`,
    ``tta_pipeline`` = :func:`build_tta_pipeline` of the test pipeline with the
    ``scales`` and ``flip`` of ``tta_model``.
    """
    if 'tta_model' not in cfg:
        print_log(f'the config has no tta_model; using {DEFAULT_TTA_MODEL}', logger='current')
        cfg.tta_model = ConfigDict(DEFAULT_TTA_MODEL)
    dataset = innermost_dataset(cfg.test_dataloader.dataset)
    if 'tta_pipeline' not in cfg:
        scales = cfg.tta_model.get('scales', DEFAULT_TTA_SCALES)
        flip = cfg.tta_model.get('flip', True)
        cfg.tta_pipeline = build_tta_pipeline(dataset.pipeline, scales, flip)
        print_log(f'the config has no tta_pipeline; derived {cfg.tta_pipeline}', logger='current')
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    dataset.pipeline = cfg.tta_pipeline
    return cfg


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='test config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation')
    parser.add_argument(
        '--dump-frame-detections', help='write frame_detections.pkl (for tools/ensemble.py)'
    )
    parser.add_argument('--dump-video-detections', help='write video_detections.pkl')
    parser.add_argument(
        '--format-only',
        action='store_true',
        help='write the submission files (no GT read, no mAP); needs --outfile-prefix',
    )
    parser.add_argument(
        '--test-split',
        action='store_true',
        help="test on the config's test_split_dataset (the challenge test videos); "
        'implies --format-only',
    )
    parser.add_argument(
        '--outfile-prefix',
        help='path prefix of the submission files (PREFIX_frame_detections.pkl, ...)',
    )
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    args.format_only = args.format_only or args.test_split
    if args.format_only and (args.dump_frame_detections or args.dump_video_detections):
        parser.error('--format-only writes PREFIX_*_detections.pkl; drop --dump-*-detections')
    return args


def _tube_metrics(cfg: Config, option: str) -> list:
    evaluators = cfg.test_evaluator
    evaluators = evaluators if isinstance(evaluators, (list, tuple)) else [evaluators]
    tube_metrics = [e for e in evaluators if e.get('type') == 'MultiSportsTubeMetric']
    if not tube_metrics:
        raise ValueError(
            f'{cfg.filename}: {option} needs a MultiSportsTubeMetric in test_evaluator'
        )
    return tube_metrics


def use_test_split(cfg: Config) -> Config:
    """Test on ``cfg.test_split_dataset`` (the prepared test videos, no GT)."""
    if 'test_split_dataset' not in cfg:
        raise ValueError(
            f"{cfg.filename}: --test-split tests on the config's test_split_dataset, which it "
            'lacks; inherit configs/_base_/datasets/multisports_rgb.py or point '
            'test_dataloader.dataset.ann_file/proposal_file at the files of '
            'prepare_multisports.py --split test and use --format-only'
        )
    cfg.test_dataloader.dataset = cfg.test_split_dataset
    return cfg


def set_format_only(cfg: Config, outfile_prefix: Optional[str]) -> Config:
    """Make every ``MultiSportsTubeMetric`` of ``test_evaluator`` write a submission, GT-free."""
    for metric in _tube_metrics(cfg, '--format-only'):
        metric['format_only'] = True
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


def _set_dumps(cfg: Config, frame_path: Optional[str], video_path: Optional[str]) -> None:
    for metric in _tube_metrics(cfg, '--dump-*-detections'):
        if frame_path:
            metric['dump_frame_detections'] = frame_path
        if video_path:
            metric['dump_video_detections'] = video_path


def main(argv: Optional[List[str]] = None) -> dict:
    """Build the Runner, load the checkpoint, test; return the metrics."""
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'{args.checkpoint}: no such checkpoint file')
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    if args.test_split:
        use_test_split(cfg)
    if args.format_only:
        set_format_only(cfg, args.outfile_prefix)
    elif args.outfile_prefix:
        raise ValueError('--outfile-prefix is for --format-only / --test-split')
    if args.dump_frame_detections or args.dump_video_detections:
        _set_dumps(cfg, args.dump_frame_detections, args.dump_video_detections)
    if args.tta:
        apply_tta(cfg)
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    destroy_process_group_after_success()
    return metrics


if __name__ == '__main__':
    main()
