"""Fixtures for the model tests: tiny detectors and AVA-style data samples."""

import os

import pytest
import torch
from mmaction.structures import ActionDataSample
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.structures import InstanceData

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY_PCCA = os.path.join(REPO_ROOT, 'configs', '_base_', 'models', 'slowfast-tiny_pcca.py')
#: Tiny clip: 8 frames of 64x96 -> a 4x6 feature map (stride 16).
CLIP_SHAPE = (3, 8, 64, 96)
NUM_CLASSES = 66


def make_sample(
    proposals, gt_boxes=(), gt_classes=(), img_shape=CLIP_SHAPE[2:], num_classes=NUM_CLASSES
):
    """An ``ActionDataSample`` as mmaction2's AVA pipeline packs it.

    Args:
        proposals (sequence): ``(n, 4)`` person boxes, pixels.
        gt_boxes (sequence): ``(m, 4)`` ground-truth boxes, pixels.
        gt_classes (sequence[sequence[int]]): the classes of every gt box.
    """
    sample = ActionDataSample()
    sample.set_metainfo(dict(img_shape=tuple(img_shape), img_key='clip,0001'))
    sample.proposals = InstanceData(
        bboxes=torch.tensor(proposals, dtype=torch.float32).reshape(-1, 4)
    )
    labels = torch.zeros(len(gt_boxes), num_classes)
    for row, classes in enumerate(gt_classes):
        labels[row, list(classes)] = 1.0
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor(gt_boxes, dtype=torch.float32).reshape(-1, 4), labels=labels
    )
    return sample


def build_model(cfg_path=TINY_PCCA, seed=0, **roi_head_overrides):
    """Build (and initialise) a detector from a model config with a fixed seed."""
    cfg = Config.fromfile(cfg_path)
    # The toy configs start from the demo's pretrained backbone file (tests/test_tools
    # checks that loading); here every model starts from seeded random weights.
    cfg.model.init_cfg = None
    if roi_head_overrides:
        cfg.model.roi_head.update(roi_head_overrides)
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def clips(batch, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(CLIP_SHAPE, generator=generator) * 255 for _ in range(batch)]


@pytest.fixture()
def tiny_model():
    return build_model()


@pytest.fixture(autouse=True)
def mmdet_default_scope():
    """Build in mmdet's scope, as FastRCNN does: other tests' Runners leave 'mmaction' set."""
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope('mmdet'):
        yield
