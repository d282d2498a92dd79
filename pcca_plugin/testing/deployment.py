"""Helpers of the deployment tests: tiny checkpoints, a config without an export path, a video.

The tiny toy-sports configs export in seconds; the tests export each once
(at :data:`TOY_INPUT_SIZE`, the toy-sports frame size) and reuse the file.
The PyTorch reference here goes through the model's data preprocessor and
``predict`` (mmdet's ``TwoStageDetector.predict`` with given proposals), not
through :mod:`pcca_plugin.deployment.verify`, so the tests check that module too.
"""

import os
import os.path as osp
from typing import Dict

import cv2
import numpy as np
import torch

from . import repo_path

#: The tiny toy-sports configs (PCCA and the linear baseline).
TINY_PCCA = repo_path('configs', 'pcca', 'pcca_slowfast-tiny_1xb8-8x1x1-5e_toy-sports-rgb.py')
TINY_LINEAR = repo_path('configs', 'pcca', 'linear_slowfast-tiny_1xb8-8x1x1-5e_toy-sports-rgb.py')
#: ``(H, W)`` of the toy-sports frames, which the toy configs do not resize.
TOY_INPUT_SIZE = (96, 192)
#: The tiny linear config with max-pooling RoIAlign, which ONNX's RoiAlign computes differently.
MAX_POOL_CONFIG = """_base_ = [{base!r}]
model = dict(init_cfg=None, roi_head=dict(bbox_roi_extractor=dict(pool_mode='max')))
"""
#: Person boxes of the generated demo video: (x1, y1, x2, y2) normalised, moving right.
DEMO_PERSONS = ((0.05, 0.2, 0.3, 0.9), (0.55, 0.1, 0.8, 0.8))


def save_plain_state_dict(config: str, path: str, seed: int = 0) -> str:
    """Build ``config``'s detector with seeded random weights and ``torch.save`` its state dict.

    A plain state dict (no ``{'state_dict': ...}``), the second layout the export reads.
    """
    from mmdet.registry import MODELS
    from mmengine.config import Config

    cfg = Config.fromfile(config)
    cfg.model.init_cfg = None
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


@torch.no_grad()
def predict_scores(model: torch.nn.Module, raw_clip: torch.Tensor, boxes: torch.Tensor):
    """The detector's ``predict`` for one clip: the preprocessed clip and the scores.

    Args:
        model: a built detector in eval mode.
        raw_clip: ``(3, T, H, W)`` float pixels, as the pipeline gives them.
        boxes: ``(N, 4)`` pixels of the clip.

    Returns:
        tuple: the data preprocessor's ``(1, 3, T, H, W)`` output and ``(N, K)`` scores.
    """
    from mmaction.structures import ActionDataSample
    from mmengine.structures import InstanceData

    sample = ActionDataSample()
    sample.set_metainfo(dict(img_shape=tuple(raw_clip.shape[-2:])))
    sample.proposals = InstanceData(bboxes=boxes.clone())
    data = model.data_preprocessor(dict(inputs=[raw_clip], data_samples=[sample]), False)
    results = model.predict(data['inputs'], data['data_samples'])
    return data['inputs'], results[0].pred_instances.scores


def write_demo_video(path: str, num_frames: int, height: int, width: int) -> Dict[int, np.ndarray]:
    """Write an mp4 of two bright players on a noisy field; returns frame -> ``(2, 5)`` boxes."""
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), 25.0, (width, height))
    boxes = {}
    for t in range(num_frames):
        frame = rng.integers(40, 90, (height, width, 3), dtype=np.uint8)
        shift = np.array([0.01 * t, 0, 0.01 * t, 0])
        frame_boxes = np.array([np.array(box) + shift for box in DEMO_PERSONS])
        for box in frame_boxes:
            x1, y1, x2, y2 = (box * [width, height, width, height]).astype(int)
            cv2.rectangle(frame, (x1, y1), (x2, y2), (230, 230, 230), -1)
        writer.write(frame)
        scores = np.full((len(frame_boxes), 1), 0.9)
        boxes[t + 1] = np.concatenate([frame_boxes, scores], axis=1).astype(np.float32)
    writer.release()
    return boxes


__all__ = [
    'DEMO_PERSONS',
    'MAX_POOL_CONFIG',
    'TINY_LINEAR',
    'TINY_PCCA',
    'TOY_INPUT_SIZE',
    'predict_scores',
    'save_plain_state_dict',
    'write_demo_video',
]
