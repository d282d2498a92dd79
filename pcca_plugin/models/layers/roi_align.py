"""Average RoIAlign whose kernel follows the device: a sparse matrix product on the CPU.

Shape shorthand: ``B`` images, ``C`` channels, ``H x W`` map, ``N`` RoIs,
``h x w`` output bins per RoI, ``R = B * H * W`` map positions.

One public op, as torchvision's ``roi_align`` dispatches by device (and keeps
its pure-Python ``_roi_align`` private): :class:`RoIAlign` computes mmcv's
average ``RoIAlign`` (same arguments, same sampling) with

- ``'sparse'``: one sparse ``(N * h * w, R)`` matrix times the channels-last
  map (:mod:`._sparse_roi_align`), fast on the CPU forward and backward;
- ``'mmcv'``: ``mmcv.ops.roi_align``, mmcv's CPU/CUDA kernels;
- ``'auto'`` (default): ``'sparse'`` for CPU maps, ``'mmcv'`` on other devices.

All give the same features and gradients to float rounding
(``tests/test_models/test_layers/test_roi_align.py``). With the sparse kernel
the op can also hand over the tokens unformed, as the two factors of their
product (:class:`SampledContext`), so that a consumer may apply a linear map
to the small feature map first (``P (K V) = K (V P^T)``; the per-clip form of
:class:`~.cross_attention.PersonContextTransformer`).
"""

from typing import NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from ._common import ValidatedChoice
from ._sparse_roi_align import mix_rows, roi_align_matrix

#: The kernels of :class:`RoIAlign`; ``'auto'`` picks by the feature map's device.
ROI_ALIGN_IMPLS = ('auto', 'sparse', 'mmcv')


class FeatureMap:
    """A ``(B, C, H, W)`` map and its channels-last ``(B * H * W, C)`` table, formed once.

    Pass one to several :class:`RoIAlign` ops (the person and context RoIs of
    one map) so that the sparse kernel copies the map to channels last once.

    Args:
        feat (Tensor): ``(B, C, H, W)``.
    """

    def __init__(self, feat: Tensor) -> None:
        self.feat = feat
        self._table: Optional[Tensor] = None

    @property
    def shape(self) -> Tuple[int, int, int]:
        """``(B, H, W)``."""
        num_images, _, height, width = self.feat.shape
        return num_images, height, width

    @property
    def table(self) -> Tensor:
        """The map as ``(B * H * W, C)``, row-major (a copy, formed on first use).

        Row-major: the sparse product reads whole rows, and a strided view
        (what ``reshape`` gives for ``B = 1``) makes it several times slower.
        """
        if self._table is None:
            num_images, channels, height, width = self.feat.shape
            table = self.feat.permute(0, 2, 3, 1).reshape(num_images * height * width, channels)
            self._table = table.contiguous()  # (B*H*W, C)
        return self._table


class SampledContext(NamedTuple):
    """RoIAlign tokens not yet formed: ``matrix @ table``.

    Returned by ``RoIAlign.tokens(..., lazy=True)`` with the sparse kernel
    (and so by ``ContextRoIExtractor(..., lazy_context=True)``). Keeping the
    two factors lets a head apply a linear map to the small feature map once
    per clip instead of to every person's tokens (``P (K V) = K (V P^T)``).

    Attributes:
        table (Tensor): the pooled feature map, channels last, ``(B * H * W, C)``.
        matrix (Tensor): sparse RoIAlign weights, ``(N * L, B * H * W)``
            (:func:`roi_align_matrix`).
        num_rois (int): ``N``.
        num_tokens (int): ``L = h * w``.
    """

    table: Tensor
    matrix: Tensor
    num_rois: int
    num_tokens: int

    @property
    def channels(self) -> int:
        """``C``."""
        return self.table.shape[1]

    def tokens(self) -> Tensor:
        """The context tokens, ``(N, L, C)``."""
        return self.sample(self.table)

    def sample(self, table: Tensor) -> Tensor:
        """RoIAlign of another map over the same positions: ``(R, D)`` -> ``(N, L, D)``."""
        mixed = mix_rows(self.matrix, table)  # (N*L, D)
        return mixed.reshape(self.num_rois, self.num_tokens, table.shape[1])  # (N, L, D)


class RoIAlign(nn.Module):
    """mmcv's average ``RoIAlign``, computed by the kernel that suits the device.

    Args:
        output_size (int | tuple[int, int]): ``(h, w)``.
        spatial_scale (float): feature cells per input pixel, ``1 / featmap_stride``
            (with stride 16, a box from pixel 8 to 40 spans feature
            coordinates 0 to 2 when ``aligned``).
        sampling_ratio (int): samples per bin side; 0 = adaptive
            (``ceil(roi size / bins)``), as in mmcv.
        pool_mode (str): only ``'avg'`` (max pooling is not a linear map).
        aligned (bool): mmcv's half-pixel offset.
        impl (str): the kernel, one of :data:`ROI_ALIGN_IMPLS`.
    """

    #: The kernel choice, one of :data:`ROI_ALIGN_IMPLS`, checked when set.
    impl = ValidatedChoice(
        'roi_align_impl', ROI_ALIGN_IMPLS, 'same features; sparse is faster on the CPU'
    )

    def __init__(
        self,
        output_size: Union[int, Sequence[int]],
        spatial_scale: float = 1.0,
        sampling_ratio: int = 0,
        pool_mode: str = 'avg',
        aligned: bool = True,
        impl: str = 'auto',
    ) -> None:
        super().__init__()
        if pool_mode != 'avg':
            raise ValueError(
                f"RoIAlign computes pool_mode='avg' only (got {pool_mode!r}); use "
                'mmcv.ops.RoIAlign for max pooling.'
            )
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        self.output_size = tuple(int(s) for s in output_size)
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = int(sampling_ratio)
        self.aligned = bool(aligned)
        self.impl = impl

    def extra_repr(self) -> str:
        return (
            f'output_size={self.output_size}, spatial_scale={self.spatial_scale}, '
            f'sampling_ratio={self.sampling_ratio}, aligned={self.aligned}, impl={self.impl!r}'
        )

    @property
    def num_bins(self) -> int:
        """``h * w``."""
        return self.output_size[0] * self.output_size[1]

    def uses_sparse(self, feat: Union[Tensor, FeatureMap]) -> bool:
        """Whether the sparse kernel runs for ``feat`` (else mmcv's)."""
        if self.impl == 'auto':
            map_tensor = feat.feat if isinstance(feat, FeatureMap) else feat
            return map_tensor.device.type == 'cpu'
        return self.impl == 'sparse'

    def matrix(self, rois: Tensor, feat_shape: Tuple[int, int, int], dtype: torch.dtype) -> Tensor:
        """The sparse ``(N * h * w, B * H * W)`` weights of the op (:func:`roi_align_matrix`)."""
        return roi_align_matrix(
            rois,
            self.output_size,
            self.spatial_scale,
            feat_shape,
            self.sampling_ratio,
            self.aligned,
            dtype,
        )

    def tokens(
        self, feat: Union[Tensor, FeatureMap], rois: Tensor, lazy: bool = False
    ) -> Union[Tensor, SampledContext]:
        """RoIAlign of every RoI as ``h * w`` tokens.

        Args:
            feat (Tensor | FeatureMap): ``(B, C, H, W)``.
            rois (Tensor): ``(N, 5)`` as ``(batch_index, x1, y1, x2, y2)``, pixels.
            lazy (bool): with the sparse kernel, return the two factors of the
                product (:class:`SampledContext`) instead of the tokens; mmcv's
                kernel always returns the tokens.

        Returns:
            Tensor | SampledContext: ``(N, h * w, C)``, bins in row-major order
            (contiguous), or its factors.
        """
        feature_map = feat if isinstance(feat, FeatureMap) else FeatureMap(feat)
        if not self.uses_sparse(feature_map):
            out = self._mmcv_roi_align(feature_map.feat, rois)  # (N, C, h, w)
            return out.flatten(2).transpose(1, 2).contiguous()  # (N, h*w, C)
        table = feature_map.table  # (B*H*W, C)
        matrix = self.matrix(rois, feature_map.shape, table.dtype)  # (N*h*w, B*H*W)
        sampled = SampledContext(table, matrix, rois.shape[0], self.num_bins)
        return sampled if lazy else sampled.tokens()

    def forward(self, feat: Tensor, rois: Tensor) -> Tensor:
        """``(B, C, H, W)`` and ``(N, 5)`` -> ``(N, C, h, w)``, as mmcv's ``RoIAlign``."""
        if not self.uses_sparse(feat):
            return self._mmcv_roi_align(feat, rois)
        tokens = self.tokens(feat, rois)  # (N, h*w, C)
        return tokens.transpose(1, 2).reshape(rois.shape[0], feat.shape[1], *self.output_size)

    def _mmcv_roi_align(self, feat: Tensor, rois: Tensor) -> Tensor:
        """mmcv's kernel: ``(N, C, h, w)``."""
        from mmcv.ops import roi_align

        return roi_align(
            feat,
            rois,
            self.output_size,
            self.spatial_scale,
            self.sampling_ratio,
            'avg',
            self.aligned,
        )


__all__ = ['ROI_ALIGN_IMPLS', 'FeatureMap', 'RoIAlign', 'SampledContext', 'roi_align_matrix']
