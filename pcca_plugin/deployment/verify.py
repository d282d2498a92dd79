"""Checked, not assumed: onnxruntime's scores against the PyTorch model's own predict step.

Shape shorthand: ``T`` frames, ``H x W`` the clip's input size, ``N`` boxes,
``K`` classes.

The reference is the detector itself, not the export wrapper: ``extract_feat``
and ``roi_head.predict`` with the boxes as proposals, as
:func:`pcca_plugin.visualization.video_demo.predict_batch` and the test loop
run it (the CPU's sparse RoIAlign, the attention form the cost model picks).
The boxes of a check lie inside and across the clip's border.
"""

from dataclasses import dataclass
from typing import List, Sequence

import numpy as np
import torch
from torch import Tensor

#: Largest absolute difference of any score that a check accepts.
SCORE_ATOL = 1e-4
#: Box counts of a check: one person, a few, more than a typical frame.
CHECK_BOX_COUNTS = (1, 5, 17)
#: Box centres of the boxes inside the clip: this far from the border (fraction of H, W).
INSIDE_MARGIN = 0.3
#: Box centres of the boxes across the border: within this of an edge, either side.
BORDER_BAND = 0.1
#: Box sides, as fractions of the clip's height and width.
MIN_BOX_FRACTION, MAX_BOX_FRACTION = 0.05, 0.4


@dataclass
class ScoreCheck:
    """One comparison: ``num_boxes`` boxes, the largest score difference, the verdict."""

    num_boxes: int
    max_abs_diff: float
    atol: float = SCORE_ATOL

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.atol

    def __str__(self) -> str:
        verdict = 'ok' if self.passed else 'FAILED'
        return f'N={self.num_boxes}: max |onnx - torch| = {self.max_abs_diff:.2e} ({verdict})'


def check_boxes(height: int, width: int, num_boxes: int, seed: int = 0) -> Tensor:
    """``(N, 4)`` float32 boxes: even rows inside the clip, odd rows across its border."""
    generator = torch.Generator().manual_seed(seed)
    centre = torch.rand(num_boxes, 2, generator=generator)  # (N, 2) as (x, y), fractions
    inside = INSIDE_MARGIN + centre * (1 - 2 * INSIDE_MARGIN)
    edge = torch.rand(num_boxes, 2, generator=generator) < 0.5  # near 0 or near 1
    across = torch.where(edge, 0.0, 1.0) + (centre - 0.5) * 2 * BORDER_BAND
    centre = torch.where((torch.arange(num_boxes) % 2 == 0)[:, None], inside, across)
    size = MIN_BOX_FRACTION + torch.rand(num_boxes, 2, generator=generator) * (
        MAX_BOX_FRACTION - MIN_BOX_FRACTION
    )
    scale = torch.tensor([width, height], dtype=torch.float32)
    return torch.cat([(centre - size / 2) * scale, (centre + size / 2) * scale], dim=1).float()


@torch.no_grad()
def torch_scores(detector: torch.nn.Module, clip: Tensor, boxes: Tensor) -> Tensor:
    """The detector's predict step on one clip: ``(1, 3, T, H, W)``, ``(N, 4)`` -> ``(N, K)``."""
    from mmaction.structures import ActionDataSample
    from mmengine.structures import InstanceData

    sample = ActionDataSample()
    sample.set_metainfo(dict(img_shape=tuple(clip.shape[-2:])))
    features = detector.extract_feat(clip)
    proposals = InstanceData(bboxes=boxes.clone())
    return detector.roi_head.predict(features, [proposals], [sample])[0].scores


def verify_onnx(
    detector: torch.nn.Module,
    path: str,
    box_counts: Sequence[int] = CHECK_BOX_COUNTS,
    seed: int = 0,
    atol: float = SCORE_ATOL,
) -> List[ScoreCheck]:
    """Compare onnxruntime with PyTorch on one random clip and boxes of each count.

    Args:
        detector (nn.Module): the PyTorch detector the file was exported from.
        path (str): the ``.onnx`` file.
        box_counts (Sequence[int]): ``N`` of each comparison.
        seed (int): seeds the clip and the boxes.
        atol (float): the largest score difference accepted.

    Returns:
        list[ScoreCheck]: one per box count (check ``passed``).
    """
    from .runtime import OnnxActionDetector

    runtime = OnnxActionDetector(path)
    generator = torch.Generator().manual_seed(seed)
    clip = torch.randn(runtime.clip_shape, generator=generator)  # normalised-like input
    height, width = runtime.clip_shape[-2:]
    checks = []
    for num_boxes in box_counts:
        boxes = check_boxes(height, width, num_boxes, seed + num_boxes)
        expected = torch_scores(detector, clip, boxes).numpy()  # (N, K)
        got = runtime.scores(clip.numpy(), boxes.numpy())  # (N, K)
        checks.append(ScoreCheck(num_boxes, float(np.abs(got - expected).max()), atol))
    return checks


__all__ = [
    'CHECK_BOX_COUNTS',
    'SCORE_ATOL',
    'ScoreCheck',
    'check_boxes',
    'torch_scores',
    'verify_onnx',
]
