"""Helpers for the model tests: tiny detectors, AVA-style samples, twin transformers.

Used by ``tests/test_models`` (and any test that builds the PCCA detector);
tests import them from here, never from another test module or a
``conftest.py``.
"""

import zlib
from typing import Dict, Sequence, Tuple

import torch
import torch.nn as nn
from mmaction.structures import ActionDataSample
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.structures import InstanceData

from ..models import PersonContextTransformer
from ..models.layers import RoIAlign, SampledContext
from . import repo_path

#: The tiny SlowFast + PCCA model config (CPU tests and the demo).
TINY_PCCA = repo_path('configs', '_base_', 'models', 'slowfast-tiny_pcca.py')
#: The tiny SlowFast + linear head config.
TINY_LINEAR = repo_path('configs', '_base_', 'models', 'slowfast-tiny_linear.py')
#: Tiny clip: 8 frames of 64x96 -> a 4x6 feature map (stride 16).
CLIP_SHAPE = (3, 8, 64, 96)
NUM_CLASSES = 66

#: Sizes of the small transformers the layer tests compare.
IN_CHANNELS, EMBED_DIMS, NUM_HEADS, NUM_LAYERS = 12, 16, 4, 3
CONTEXT_SIZE = (3, 2)
CONTEXT_TOKENS = CONTEXT_SIZE[0] * CONTEXT_SIZE[1]
#: Relative tolerance of the agreement between execution forms, per dtype.
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}
#: A dropout rate high enough that a wrong mask or a missing dropout mass shows.
TEST_DROPOUT = 0.3
#: The feature map of :func:`sampled_context`: two clips of a 5x7 map at stride 8.
NUM_CLIPS, MAP_H, MAP_W, MAP_STRIDE = 2, 5, 7, 8


def make_sample(
    proposals, gt_boxes=(), gt_classes=(), img_shape=CLIP_SHAPE[2:], num_classes=NUM_CLASSES
) -> ActionDataSample:
    """An ``ActionDataSample`` as mmaction2's AVA pipeline packs it.

    Args:
        proposals (sequence): ``(n, 4)`` person boxes, pixels.
        gt_boxes (sequence): ``(m, 4)`` ground-truth boxes, pixels.
        gt_classes (sequence[sequence[int]]): the classes of every gt box.
        img_shape (tuple[int, int]): ``(h, w)`` of the clip.
        num_classes (int): width of the multi-hot labels.
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


def two_samples() -> list:
    """Two clips: 2 and 3 proposals, one labelled person each."""
    return [
        make_sample([[4, 6, 30, 60], [50, 10, 80, 62]], [[4, 6, 30, 60]], [[3, 7]]),
        make_sample(
            [[20, 2, 44, 50], [60, 30, 90, 63], [0, 0, 10, 12]], [[60, 30, 90, 63]], [[12]]
        ),
    ]


def build_model(cfg_path: str = TINY_PCCA, seed: int = 0, **roi_head_overrides) -> nn.Module:
    """Build (and initialise) a detector from a model config with a fixed seed.

    Args:
        cfg_path (str): a model config.
        seed (int): the seed of the random weights.
        **roi_head_overrides: merged into ``model.roi_head`` (e.g.
            ``bbox_head=dict(attn_impl='standard')``).
    """
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


def clips(batch: int, seed: int = 0) -> list:
    """``batch`` random clips of :data:`CLIP_SHAPE`, pixel values in ``[0, 255)``."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(CLIP_SHAPE, generator=generator) * 255 for _ in range(batch)]


def preprocess(model: nn.Module, samples: list, seed: int = 0, training: bool = True) -> dict:
    """The detector's data preprocessor applied to random clips and ``samples``."""
    data = dict(inputs=clips(len(samples), seed), data_samples=samples)
    return model.data_preprocessor(data, training)


class FixedMaskDropout(nn.Module):
    """Dropout with a mask fixed by ``seed`` and the input shape (same in two models)."""

    def __init__(self, p: float, seed: int) -> None:
        super().__init__()
        self.p, self.seed = p, seed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        generator = torch.Generator().manual_seed(self.seed)
        keep = torch.rand(x.shape, generator=generator, dtype=torch.float64) >= self.p
        return x * keep.to(x.dtype) / (1 - self.p)


def fix_dropout_masks(model: nn.Module) -> None:
    """Replace every ``nn.Dropout`` by a :class:`FixedMaskDropout` seeded by its name."""
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Dropout):
                full_name = f'{name}.{child_name}'
                seed = zlib.crc32(full_name.encode())
                setattr(module, child_name, FixedMaskDropout(child.p, seed))


def twin_transformers(
    dtype: torch.dtype, with_pos: bool, dropout: float = TEST_DROPOUT, seed: int = 0, **kwargs
) -> Tuple[PersonContextTransformer, PersonContextTransformer]:
    """A standard transformer and a factored one with the same parameters (biases non-zero).

    Args:
        dtype (torch.dtype): of the parameters.
        with_pos (bool): with the learned positional encoding.
        dropout (float): the transformer's dropout.
        seed (int): of the weights.
        **kwargs: more arguments of the factored one (e.g. ``context_projection``).
    """
    torch.manual_seed(seed)
    sizes = dict(
        in_channels=IN_CHANNELS,
        embed_dims=EMBED_DIMS,
        num_layers=NUM_LAYERS,
        num_heads=NUM_HEADS,
        dropout=dropout,
        context_size=CONTEXT_SIZE,
        with_pos_encoding=with_pos,
    )
    standard = PersonContextTransformer(attn_impl='standard', **sizes).to(dtype)
    # non-zero biases everywhere, so that every folded bias term is exercised
    with torch.no_grad():
        for name, param in standard.named_parameters():
            if name.endswith('bias'):
                param.normal_()
    factored = PersonContextTransformer(attn_impl='factored', **sizes, **kwargs).to(dtype)
    factored.load_state_dict(standard.state_dict())
    return standard, factored


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """``|actual - expected| / |expected|`` (Frobenius norms)."""
    actual, expected = actual.detach(), expected.detach()
    return float((actual - expected).norm() / expected.norm().clamp_min(1e-300))


def person_and_context(
    num_persons: int, dtype: torch.dtype, seed: int = 1
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Random person features ``(N, C)`` and context tokens ``(N, L, C)`` of the test sizes."""
    generator = torch.Generator().manual_seed(seed)
    person = torch.randn(num_persons, IN_CHANNELS, generator=generator, dtype=torch.float64)
    context = torch.randn(
        num_persons, CONTEXT_TOKENS, IN_CHANNELS, generator=generator, dtype=torch.float64
    )
    return person.to(dtype), context.to(dtype)


def random_rois(num_rois: int, num_clips: int, extent: Sequence[float], seed: int) -> torch.Tensor:
    """``(N, 5)`` boxes inside ``extent = (w, h)`` pixels, spread over the clips."""
    generator = torch.Generator().manual_seed(seed)
    corner = torch.rand(num_rois, 2, generator=generator) * torch.tensor(extent)
    size = torch.rand(num_rois, 2, generator=generator) * 30 + 4
    index = (torch.arange(num_rois) % num_clips).float()
    return torch.cat([index[:, None], corner, corner + size], dim=1)


def awkward_rois(
    num_images: int, generator: torch.Generator, image_size: Tuple[float, float]
) -> torch.Tensor:
    """Boxes RoIAlign must handle: inside, across and beyond the border, tiny, huge.

    The fixed boxes are placed for an 88 x 48 image (a 6 x 11 map at stride 8);
    eight random boxes inside ``image_size`` follow.

    Args:
        num_images (int): the boxes go to the images in turn.
        generator (torch.Generator): for the random boxes.
        image_size (tuple[float, float]): ``(w, h)`` pixels.

    Returns:
        Tensor: ``(N, 5)`` as ``(batch_index, x1, y1, x2, y2)`` in pixels.
    """
    img_w, img_h = image_size
    boxes = [
        [2.0, 3.0, 30.0, 40.0],  # inside
        [-20.0, -12.0, 15.0, 9.0],  # across the top-left border
        [70.0, 30.0, 120.0, 70.0],  # across the bottom-right border
        [100.0, 60.0, 140.0, 90.0],  # wholly outside (reads zeros and the margin)
        [10.0, 10.0, 10.0, 10.0],  # zero area
        [5.3, 7.9, 5.8, 8.1],  # sub-pixel
        [-40.0, -40.0, 130.0, 90.0],  # larger than the map: several samples per bin
        [0.0, 0.0, float(img_w), float(img_h)],  # exactly the map
    ]
    random = torch.rand(8, 4, generator=generator) * torch.tensor([img_w, img_h] * 2)
    random = torch.cat(
        [random[:, :2].minimum(random[:, 2:]), random[:, :2].maximum(random[:, 2:])], 1
    )  # (8, 4), x1 <= x2 and y1 <= y2
    boxes = torch.cat([torch.tensor(boxes), random])
    index = torch.arange(boxes.shape[0]) % num_images
    return torch.cat([index[:, None].to(boxes.dtype), boxes], dim=1)


def sampled_context(num_persons: int, dtype: torch.dtype, seed: int = 2) -> SampledContext:
    """The context of ``num_persons`` boxes on a random two-clip map, as a sparse product.

    The map (``SampledContext.table``) is a leaf that takes a gradient.
    """
    generator = torch.Generator().manual_seed(seed)
    feat = torch.randn(
        NUM_CLIPS, IN_CHANNELS, MAP_H, MAP_W, generator=generator, dtype=torch.float64
    )
    rois = random_rois(num_persons, NUM_CLIPS, (MAP_W * MAP_STRIDE, MAP_H * MAP_STRIDE), seed)
    roi_align = RoIAlign(CONTEXT_SIZE, 1 / MAP_STRIDE, impl='sparse')
    sampled = roi_align.tokens(feat.to(dtype), rois, lazy=True)
    return with_table(sampled, sampled.table.detach().requires_grad_())


def with_table(sampled: SampledContext, table: torch.Tensor) -> SampledContext:
    """The same sparse RoIAlign over another channels-last map ``(R, C)``."""
    return SampledContext(table, sampled.matrix, sampled.num_rois, sampled.num_tokens)


def parameter_gradients(model: nn.Module) -> Dict[str, torch.Tensor]:
    """``{name: grad}`` of every parameter."""
    return {name: param.grad for name, param in model.named_parameters()}


__all__ = [
    'CLIP_SHAPE',
    'CONTEXT_SIZE',
    'CONTEXT_TOKENS',
    'EMBED_DIMS',
    'MAP_H',
    'MAP_STRIDE',
    'MAP_W',
    'NUM_CLIPS',
    'IN_CHANNELS',
    'NUM_CLASSES',
    'NUM_HEADS',
    'NUM_LAYERS',
    'TEST_DROPOUT',
    'TINY_LINEAR',
    'TINY_PCCA',
    'TOLERANCE',
    'FixedMaskDropout',
    'awkward_rois',
    'build_model',
    'clips',
    'fix_dropout_masks',
    'make_sample',
    'parameter_gradients',
    'person_and_context',
    'preprocess',
    'random_rois',
    'relative_error',
    'sampled_context',
    'twin_transformers',
    'two_samples',
    'with_table',
]
