"""Extended-box context RoI extractor of PCCA (Ning et al. 2021, sections 2.1-2.2).

Shape shorthand used throughout this module:

- ``B``: clips in the batch; ``T``: frames of a pathway's feature map;
- ``C``: channels after the pathways are concatenated (2304 for SlowFast-R101
  8x8 with ``channel_ratio=8``: 2048 slow + 256 fast);
- ``H, W``: spatial size of the feature map (16x29 for a 256x455 input when
  res5 has spatial stride 1, i.e. ``featmap_stride=16``);
- ``N``: persons (RoIs) over the whole batch;
- ``P = person_output_size`` (7) and ``h x w = context_output_size`` (9x9).

Coordinate convention
---------------------
RoIs are ``(batch_index, x1, y1, x2, y2)`` in **input-image pixels** (the
resized, cropped frame that enters the backbone, exactly as mmaction2's AVA
pipeline stores ``proposals``), continuous coordinates where pixel ``i``
covers ``[i, i + 1)``. Feature cell ``j`` covers the image interval
``[j * s, (j + 1) * s)`` with ``s = featmap_stride``. With mmcv's
``RoIAlign(aligned=True)`` an image coordinate ``x`` maps to the continuous
feature coordinate ``x / s - 0.5`` whose integer values are cell centres; e.g.
with ``s = 16`` the box ``x1 = 8, x2 = 40`` spans feature coordinates
``0.0 .. 2.0``, i.e. from the centre of cell 0 to the centre of cell 2.
Bilinear samples that fall within one cell outside the map are clamped to the
border, farther ones read zeros (mmcv's and torchvision's convention).

Degenerate boxes
----------------
NaN/Inf coordinates and inverted boxes (``x2 < x1`` or ``y2 < y1``) are
rejected with a ``ValueError`` naming the offending RoI. Boxes are then
clipped to the image (``img_shapes`` when given, otherwise the extent of the
feature map ``(H * s, W * s)``) and widened about their centre to at least
``min_box_size`` pixels, so a zero-area box or a box outside the image still
reads finite features from the nearest border; it never produces NaN.
"""

from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from torch import Tensor

from ..layers.roi_align import FeatureMap, RoIAlign, SampledContext

#: The paper's constants (section 2.1 and 2.2).
PERSON_ROI_SIZE = 7
CONTEXT_ROI_SIZE = 9
CONTEXT_SCALE = 2.0
#: res5 with spatial stride 1: the feature map is 1/16 of the input.
FEATMAP_STRIDE = 16
#: Smallest width/height (input pixels) a box is widened to before RoIAlign.
MIN_BOX_SIZE = 1.0
FeatureInput = Union[Tensor, Sequence[Tensor]]


class _TemporalMean(torch.autograd.Function):
    """``x.mean(dim=2)`` whose backward divides the small gradient, then broadcasts it.

    torch's own backward of a mean broadcasts the gradient over ``T`` first
    and divides the full ``(B, C, T, H, W)`` copy; here the gradient is a
    zero-copy ``expand`` of ``grad / T``, so no full-size tensor is
    allocated (the consumer, e.g. the backbone's last layer or a leaf's
    ``.grad``, reads it once). Same values.
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.input_shape = x.shape
        return x.mean(dim=2)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        frames = ctx.input_shape[2]
        return (grad / frames).unsqueeze(2).expand(ctx.input_shape)


def temporal_pool(feat: FeatureInput, mode: str = 'avg') -> Tensor:
    """Pool every pathway over time and concatenate along channels.

    Follows mmaction2's ``SingleRoIExtractor3D`` (which first resizes the
    pathways to the longest ``T`` with nearest interpolation; for an average
    that equals pooling each pathway on its own, because every frame is
    repeated the same number of times).

    Args:
        feat (Tensor | Sequence[Tensor]): one ``(B, C_i, T_i, H, W)`` tensor per
            pathway (SlowFast gives two), or a single 5-D tensor, or a single
            already pooled ``(B, C, H, W)`` tensor.
        mode (str): ``'avg'`` (the paper) or ``'max'``.

    Returns:
        Tensor: ``V`` of shape ``(B, sum_i C_i, H, W)``.
    """
    if isinstance(feat, Tensor):
        feat = (feat,)
    if len(feat) == 0:
        raise ValueError('temporal_pool: got no feature map; expected a tensor or a tuple.')
    pooled = []
    for index, x in enumerate(feat):
        if x.dim() == 4:
            pooled.append(x)
        elif x.dim() == 5:
            if mode == 'avg':
                pooled.append(_TemporalMean.apply(x))  # (B, C_i, H, W)
            elif mode == 'max':
                pooled.append(x.amax(dim=2))  # (B, C_i, H, W)
            else:
                raise ValueError(f"temporal_pool: mode must be 'avg' or 'max', got {mode!r}.")
        else:
            raise ValueError(
                f'temporal_pool: pathway {index} has shape {tuple(x.shape)}; expected '
                '(B, C, T, H, W) or (B, C, H, W).'
            )
    shapes = {(x.shape[0],) + tuple(x.shape[-2:]) for x in pooled}
    if len(shapes) != 1:
        raise ValueError(
            'temporal_pool: the pathways disagree in batch or spatial size '
            f'{[tuple(x.shape) for x in pooled]}; give every pathway the same spatial '
            'strides (and dilations) so their feature maps can be concatenated.'
        )
    return torch.cat(pooled, dim=1).contiguous()  # (B, C, H, W)


def check_rois(rois: Tensor, num_images: int) -> None:
    """Reject RoIs that would silently poison the features.

    Args:
        rois (Tensor): ``(N, 5)`` as ``(batch_index, x1, y1, x2, y2)``.
        num_images (int): ``B``, the batch size of the feature map.

    Raises:
        ValueError: wrong shape, non-finite values, a batch index outside
            ``[0, B)``, or an inverted box; the message names the first bad RoI.
    """
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(
            f'RoIs must have shape (N, 5) as (batch_index, x1, y1, x2, y2); got '
            f'{tuple(rois.shape)}. Build them with mmdet.structures.bbox.bbox2roi.'
        )
    if rois.numel() == 0:
        return
    finite = torch.isfinite(rois).all(dim=1)
    if not bool(finite.all()):
        bad = int(torch.nonzero(~finite)[0, 0])
        raise ValueError(
            f'RoI {bad} has a NaN/Inf coordinate: {rois[bad].tolist()}. Check the proposal '
            'file / person detector output for that frame (proposals must be finite pixels).'
        )
    batch_index = rois[:, 0]
    bad_index = (
        (batch_index < 0) | (batch_index >= num_images) | (batch_index != batch_index.round())
    )
    if bool(bad_index.any()):
        bad = int(torch.nonzero(bad_index)[0, 0])
        raise ValueError(
            f'RoI {bad} has batch index {rois[bad, 0].item()}, but the feature map holds '
            f'{num_images} clip(s).'
        )
    inverted = (rois[:, 3] < rois[:, 1]) | (rois[:, 4] < rois[:, 2])
    if bool(inverted.any()):
        bad = int(torch.nonzero(inverted)[0, 0])
        raise ValueError(
            f'RoI {bad} is inverted (x2 < x1 or y2 < y1): {rois[bad, 1:].tolist()}. Boxes '
            'must be (x1, y1, x2, y2) pixels; convert (x, y, w, h) boxes first.'
        )


def clip_boxes(rois: Tensor, extents: Tensor, min_size: float = MIN_BOX_SIZE) -> Tensor:
    """Clip boxes to their image and widen them to at least ``min_size``.

    Args:
        rois (Tensor): ``(N, 5)`` as ``(batch_index, x1, y1, x2, y2)``, pixels.
        extents (Tensor): ``(N, 2)`` as ``(img_h, img_w)`` of each RoI's image.
        min_size (float): smallest width and height after clipping, pixels.

    Returns:
        Tensor: ``(N, 5)``, a new tensor with every box inside
        ``[0, img_w] x [0, img_h]`` and at least ``min_size`` wide and high
        (as far as the image allows).
    """
    out = rois.clone()
    img_h, img_w = extents[:, 0], extents[:, 1]
    for lo, hi, size in ((1, 3, img_w), (2, 4, img_h)):
        x1 = torch.minimum(out[:, lo].clamp(min=0), size)
        x2 = torch.minimum(out[:, hi].clamp(min=0), size)
        centre = (x1 + x2) / 2
        half = torch.clamp((x2 - x1) / 2, min=min_size / 2)
        # shift the widened box back inside the image
        x1 = torch.clamp(centre - half, min=0)
        x2 = torch.minimum(x1 + 2 * half, size)
        x1 = torch.clamp(x2 - 2 * half, min=0)
        out[:, lo], out[:, hi] = x1, x2
    return out


def scale_boxes(rois: Tensor, scale: float) -> Tensor:
    """Scale boxes about their centres (the paper's "extended box", section 2.2).

    Args:
        rois (Tensor): ``(N, 5)`` as ``(batch_index, x1, y1, x2, y2)``.
        scale (float): factor applied to width and height (2.0 in the paper).

    Returns:
        Tensor: ``(N, 5)`` boxes with the same centres, ``scale`` times larger.
    """
    out = rois.clone()
    cx = (rois[:, 1] + rois[:, 3]) / 2
    cy = (rois[:, 2] + rois[:, 4]) / 2
    half_w = (rois[:, 3] - rois[:, 1]) * scale / 2
    half_h = (rois[:, 4] - rois[:, 2]) * scale / 2
    out[:, 1], out[:, 3] = cx - half_w, cx + half_w
    out[:, 2], out[:, 4] = cy - half_h, cy + half_h
    return out


@MODELS.register_module()
class ContextRoIExtractor(nn.Module):
    """Person features and extended-box context tokens from a video feature map.

    Implements section 2.1-2.2 of "Person-Context Cross Attention for
    Spatio-Temporal Action Detection" (Ning et al., 2021):

    1. ``V = mean_t(feat)`` over time, pathways concatenated, ``(B, C, H, W)``;
    2. person features ``A``: ``P x P`` RoIAlign on the person box, then a
       ``P x P`` max-pool, ``(N, C)``;
    3. context tokens: the box scaled by ``context_scale`` about its centre and
       clipped to the image, ``h x w`` RoIAlign, flattened to ``(N, h*w, C)``.

    The layout of the inputs matches mmaction2's ``SingleRoIExtractor3D`` so
    the stock ``FastRCNN`` + ``AVARoIHead`` machinery drives it. See the module
    docstring for the coordinate convention and the handling of degenerate
    boxes.

    Args:
        featmap_stride (int): input pixels per feature cell (16 for
            SlowFast/SlowOnly with res5 spatial stride 1).
        person_output_size (int): ``P`` of the person RoIAlign (7).
        context_output_size (int | tuple[int, int]): ``(h, w)`` of the context
            RoIAlign (9x9).
        context_scale (float): extended-box factor (2.0).
        sampling_ratio (int): bilinear samples per bin side; 0 = adaptive
            (``ceil(bin size)``), as in mmcv.
        temporal_pool_mode (str): ``'avg'`` (paper) or ``'max'``.
        in_channels (int, optional): expected ``C``; when set, a feature map with
            a different channel count raises an error naming both values.
        min_box_size (float): boxes are widened to at least this many pixels.
        roi_align_impl (str): the kernel of both RoIAlign ops
            (:class:`~pcca_plugin.models.layers.RoIAlign`): ``'auto'``
            (default: the sparse product on CPU, mmcv's kernels on GPU),
            ``'sparse'`` or ``'mmcv'``; all give the same features to float
            rounding (same sampling, same gradients).
    """

    def __init__(
        self,
        featmap_stride: int = FEATMAP_STRIDE,
        person_output_size: int = PERSON_ROI_SIZE,
        context_output_size: Union[int, Tuple[int, int]] = CONTEXT_ROI_SIZE,
        context_scale: float = CONTEXT_SCALE,
        sampling_ratio: int = 0,
        temporal_pool_mode: str = 'avg',
        in_channels: Optional[int] = None,
        min_box_size: float = MIN_BOX_SIZE,
        roi_align_impl: str = 'auto',
    ) -> None:
        super().__init__()
        if featmap_stride <= 0:
            raise ValueError(f'featmap_stride must be positive, got {featmap_stride}.')
        if context_scale < 1.0:
            raise ValueError(
                f'context_scale={context_scale} would make the context box smaller than '
                'the person box; use a value >= 1 (the paper uses 2.0).'
            )
        if temporal_pool_mode not in ('avg', 'max'):
            raise ValueError(
                f"temporal_pool_mode must be 'avg' or 'max', got {temporal_pool_mode!r}."
            )
        if isinstance(context_output_size, int):
            context_output_size = (context_output_size, context_output_size)
        self.featmap_stride = featmap_stride
        self.person_output_size = person_output_size
        self.context_output_size = tuple(context_output_size)
        self.context_scale = float(context_scale)
        self.sampling_ratio = sampling_ratio
        self.temporal_pool_mode = temporal_pool_mode
        self.in_channels = in_channels
        self.min_box_size = float(min_box_size)
        # one RoI op for the persons and one for the context; each picks its kernel by device
        roi_align = dict(
            spatial_scale=1.0 / featmap_stride,
            sampling_ratio=sampling_ratio,
            pool_mode='avg',
            aligned=True,
            impl=roi_align_impl,
        )
        self.person_roi_layer = RoIAlign(person_output_size, **roi_align)
        self.context_roi_layer = RoIAlign(self.context_output_size, **roi_align)

    @property
    def roi_align_impl(self) -> str:
        """The kernel choice of both RoIAlign ops: ``'auto'``, ``'sparse'`` or ``'mmcv'``."""
        return self.context_roi_layer.impl

    @roi_align_impl.setter
    def roi_align_impl(self, roi_align_impl: str) -> None:
        for layer in (self.person_roi_layer, self.context_roi_layer):
            layer.impl = roi_align_impl  # validated by the op

    @property
    def num_context_tokens(self) -> int:
        """``h * w``, the number of context tokens per person."""
        return self.context_output_size[0] * self.context_output_size[1]

    def extra_repr(self) -> str:
        return (
            f'featmap_stride={self.featmap_stride}, '
            f'person_output_size={self.person_output_size}, '
            f'context_output_size={self.context_output_size}, '
            f'context_scale={self.context_scale}, sampling_ratio={self.sampling_ratio}, '
            f'temporal_pool_mode={self.temporal_pool_mode!r}, in_channels={self.in_channels}, '
            f'roi_align_impl={self.roi_align_impl!r}'
        )

    def forward(
        self,
        feat: FeatureInput,
        rois: Tensor,
        img_shapes: Optional[Union[Tensor, Sequence[Tuple[int, int]]]] = None,
        lazy_context: bool = False,
    ) -> Tuple[Tensor, Union[Tensor, SampledContext]]:
        """Extract person features and context tokens.

        Args:
            feat (Tensor | Sequence[Tensor]): backbone output, ``(B, C_i, T_i,
                H, W)`` per pathway (or one such tensor).
            rois (Tensor): ``(N, 5)`` as ``(batch_index, x1, y1, x2, y2)`` in
                input pixels.
            img_shapes (Tensor | Sequence[tuple], optional): ``(B, 2)`` as
                ``(img_h, img_w)`` of each clip, used to clip the boxes; by
                default the feature map's extent ``(H * s, W * s)``.
            lazy_context (bool): leave the context tokens as a sparse product
                where the sparse RoIAlign kernel runs (``RoIAlign.tokens(...,
                lazy=True)``): a :class:`SampledContext` (the channels-last
                pooled map and the sparse RoIAlign matrix) whose ``tokens()``
                are the tokens, so that a head can project the map once per
                clip before sampling it (``PersonContextTransformer``;
                ``PCCARoIHead`` asks for it). With mmcv's kernel the tokens are
                returned as a tensor.

        Returns:
            tuple:

            - person features ``A``, ``(N, C)``;
            - context tokens, ``(N, h*w, C)``, row-major over the ``h x w`` grid
              (or their :class:`SampledContext` with ``lazy_context``).
        """
        v = temporal_pool(feat, self.temporal_pool_mode)  # (B, C, H, W)
        num_images, channels, feat_h, feat_w = v.shape
        if self.in_channels is not None and channels != self.in_channels:
            raise ValueError(
                f'ContextRoIExtractor: the backbone gives {channels} channels after '
                f'concatenating the pathways, but in_channels={self.in_channels} is '
                'configured; make roi_head.bbox_roi_extractor.in_channels and '
                'roi_head.bbox_head.in_channels match the backbone.'
            )
        if v.dtype in (torch.float16, torch.bfloat16):
            # under autocast: RoIAlign and the box coordinates in float32 (mmcv's CPU
            # RoIAlign has no half kernels; bfloat16 pixel coordinates are off by pixels)
            v = v.float()
        rois = rois.to(v.dtype)
        check_rois(rois, num_images)
        if img_shapes is None:
            extents = rois.new_tensor(
                [[feat_h * self.featmap_stride, feat_w * self.featmap_stride]]
            ).expand(num_images, 2)
        else:
            extents = torch.as_tensor(img_shapes, dtype=rois.dtype, device=rois.device)
            extents = extents.reshape(num_images, 2)  # (B, 2) as (img_h, img_w)
        roi_extents = extents[rois[:, 0].long()]  # (N, 2)

        person_rois = clip_boxes(rois, roi_extents, self.min_box_size)
        context_rois = clip_boxes(
            scale_boxes(rois, self.context_scale), roi_extents, self.min_box_size
        )
        feature_map = FeatureMap(v)  # the sparse kernel's channels-last copy, made once
        person = self.person_roi_layer.tokens(feature_map, person_rois)  # (N, P*P, C)
        # (N, C): the P x P max-pool; max() routes the gradient through one index per
        # channel (a scatter), amax() through a tie mask (several full-size passes)
        person = person.max(dim=1).values
        context = self.context_roi_layer.tokens(feature_map, context_rois, lazy=lazy_context)
        return person, context  # (N, C), tokens (N, h*w, C) or their SampledContext
