"""Test a checkpoint with mmengine's Runner, optionally with test-time augmentation.

Usage::

    python tools/test.py CONFIG CHECKPOINT [--tta] [--work-dir DIR] [--cfg-options k=v ...]
        [--dump-frame-detections FRAME.pkl] [--dump-video-detections VIDEO.pkl]
    bash tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [same options]

``--tta`` works as in mmdet and mmpretrain: the config's ``tta_model`` wraps
``model`` and ``tta_pipeline`` replaces the test pipeline. A config without
them gets :class:`~pcca_plugin.models.tta.SpatioTemporalTTAModel` with the
default views (short sides 256 and 360, with and without horizontal flip) and
a TTA pipeline derived from its test pipeline.
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
    add_common_arguments(parser)
    return parser.parse_args(argv)


def _set_dumps(cfg: Config, frame_path: Optional[str], video_path: Optional[str]) -> None:
    evaluators = cfg.test_evaluator
    evaluators = evaluators if isinstance(evaluators, (list, tuple)) else [evaluators]
    tube_metrics = [e for e in evaluators if e.get('type') == 'MultiSportsTubeMetric']
    if not tube_metrics:
        raise ValueError(
            f'{cfg.filename}: --dump-*-detections needs a MultiSportsTubeMetric in test_evaluator'
        )
    for metric in tube_metrics:
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
    if args.dump_frame_detections or args.dump_video_detections:
        _set_dumps(cfg, args.dump_frame_detections, args.dump_video_detections)
    if args.tta:
        apply_tta(cfg)
    runner = Runner.from_cfg(cfg)
    return runner.test()


if __name__ == '__main__':
    main()
