"""RoIAlign as one sparse matrix product: the CPU kernel of :mod:`.roi_align` (private).

Average-pooled RoIAlign (He et al., "Mask R-CNN", 2017) is linear in the
feature map: every output bin is a weighted sum of feature-map positions (the
four corners of each bilinear sample, divided by the number of samples in the
bin). So for a batch of RoIs the whole operation is one sparse matrix ``K``
(bins x positions) times the channels-last feature map ``(positions, C)``,
and its gradient with respect to the map is ``K^T`` times the output
gradient. Both are sparse-dense products with a handful of nonzeros per row,
which the CPU runs at memory speed, while a per-channel scalar kernel (mmcv's
CPU RoIAlign) spends most of its time in the backward pass (a scattered add
per channel, sample and corner).

The sampling follows mmcv's ``RoIAlign`` (``mmcv/ops/roi_align.py`` and its
CPU/CUDA kernels) exactly, so the outputs agree to float rounding
(``tests/test_models/test_layers/test_roi_align.py`` compares both, forward
and backward):

- a RoI ``(batch_index, x1, y1, x2, y2)`` in input pixels maps to feature
  coordinates ``x * spatial_scale - offset`` with ``offset = 0.5`` when
  ``aligned`` (else 0, and the RoI is at least one cell wide and high);
- the RoI is divided into ``h x w`` bins; each bin takes
  ``sampling_ratio x sampling_ratio`` regularly spaced samples, or
  ``ceil(roi_size / bins)`` per side when ``sampling_ratio = 0`` (adaptive);
- a sample more than one cell outside the map reads zero; otherwise its
  coordinate is clamped to the map and read bilinearly;
- a bin is the mean of its samples (``pool_mode='avg'``; the max mode is not
  linear and is not offered here).

Shapes: ``B`` images, ``C`` channels, ``H x W`` map, ``N`` RoIs, ``h x w``
output bins per RoI.
"""

from typing import Tuple

import torch
from torch import Tensor

#: Samples more than this many cells outside the map read zero (mmcv's convention).
OUTSIDE_MARGIN = 1.0
#: mmcv's sub-pixel offset of the aligned (half-pixel-corrected) RoIAlign.
ALIGNED_OFFSET = 0.5


def _axis_samples(
    start: Tensor, length: Tensor, grid: Tensor, bins: int, size: int
) -> Tuple[Tensor, Tensor]:
    """Bilinear corner indices and weights of every sample along one axis.

    Args:
        start (Tensor): first feature coordinate of each RoI, ``(N,)``.
        length (Tensor): extent of each RoI in feature cells, ``(N,)``.
        grid (Tensor): samples per bin for each RoI, ``(N,)`` (int64).
        bins (int): output bins along this axis.
        size (int): feature-map extent along this axis.

    Returns:
        tuple[Tensor, Tensor]: indices ``(N, bins, G, 2)`` (int64, the lower
        and upper corner) and weights ``(N, bins, G, 2)``, where ``G`` is the
        largest grid; samples beyond a RoI's own grid, and samples outside the
        map, have zero weight.
    """
    dtype = start.dtype
    max_grid = max(int(grid.max()), 1) if grid.numel() else 1
    bin_size = (length / bins)[:, None, None]  # (N, 1, 1)
    bin_index = torch.arange(bins, dtype=dtype, device=start.device)[None, :, None]
    sample_index = torch.arange(max_grid, dtype=dtype, device=start.device)[None, None, :]
    per_bin = grid.clamp(min=1).to(dtype)[:, None, None]
    # the same operation order as mmcv's kernels, so that floor() lands alike
    pos = (start[:, None, None] + bin_index * bin_size) + (
        sample_index + 0.5
    ) * bin_size / per_bin  # (N, bins, G)
    used = torch.arange(max_grid, device=start.device)[None, None, :] < grid[:, None, None]
    inside = (pos >= -OUTSIDE_MARGIN) & (pos <= size) & used
    pos = pos.clamp(min=0)
    low = pos.floor().long()
    at_edge = low >= size - 1
    low = torch.where(at_edge, torch.full_like(low, size - 1), low)
    high = torch.where(at_edge, low, low + 1)
    pos = torch.where(at_edge, low.to(dtype), pos)
    frac = pos - low.to(dtype)
    keep = inside.to(dtype)
    indices = torch.stack([low, high], dim=-1)  # (N, bins, G, 2)
    weights = torch.stack([(1 - frac) * keep, frac * keep], dim=-1)  # (N, bins, G, 2)
    return indices, weights


def roi_align_matrix(
    rois: Tensor,
    output_size: Tuple[int, int],
    spatial_scale: float,
    feat_shape: Tuple[int, int, int],
    sampling_ratio: int = 0,
    aligned: bool = True,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """The sparse matrix of an average RoIAlign.

    Args:
        rois (Tensor): ``(N, 5)`` as ``(batch_index, x1, y1, x2, y2)``, pixels.
        output_size (tuple[int, int]): ``(h, w)`` bins per RoI.
        spatial_scale (float): feature cells per input pixel (``1 / stride``).
        feat_shape (tuple[int, int, int]): ``(B, H, W)`` of the feature map.
        sampling_ratio (int): samples per bin side; 0 = adaptive, as in mmcv.
        aligned (bool): mmcv's ``aligned`` (half-pixel offset).
        dtype (torch.dtype): dtype of the weights (the feature map's).

    Returns:
        Tensor: a coalesced sparse COO matrix ``(N * h * w, B * H * W)``; row
        ``(n * h + i) * w + j`` holds the weights of bin ``(i, j)`` of RoI
        ``n`` over the positions ``(b * H + y) * W + x`` of the channels-last
        map.
    """
    bins_h, bins_w = output_size
    num_images, height, width = feat_shape
    num_rois = rois.shape[0]
    coords = rois.to(dtype)
    offset = ALIGNED_OFFSET if aligned else 0.0
    start_x = coords[:, 1] * spatial_scale - offset
    start_y = coords[:, 2] * spatial_scale - offset
    length_x = (coords[:, 3] * spatial_scale - offset) - start_x
    length_y = (coords[:, 4] * spatial_scale - offset) - start_y
    if not aligned:  # mmcv: legacy RoIs are at least one cell
        length_x, length_y = length_x.clamp(min=1.0), length_y.clamp(min=1.0)
    if sampling_ratio > 0:
        grid_y = torch.full((num_rois,), sampling_ratio, dtype=torch.long, device=rois.device)
        grid_x = grid_y
    else:
        grid_y = torch.ceil(length_y / bins_h).long().clamp(min=0)
        grid_x = torch.ceil(length_x / bins_w).long().clamp(min=0)
    samples = (grid_y * grid_x).clamp(min=1).to(dtype)  # (N,): the mean's divisor
    y_index, y_weight = _axis_samples(start_y, length_y, grid_y, bins_h, height)
    x_index, x_weight = _axis_samples(start_x, length_x, grid_x, bins_w, width)
    # every (y corner, x corner) pair of every sample of every bin: (N, h, w, 2Gy, 2Gx)
    corners_y, corners_x = 2 * y_index.shape[2], 2 * x_index.shape[2]
    y_index = y_index.reshape(num_rois, bins_h, 1, corners_y, 1)
    y_weight = y_weight.reshape(num_rois, bins_h, 1, corners_y, 1)
    y_weight = y_weight / samples[:, None, None, None, None]
    x_index = x_index.reshape(num_rois, 1, bins_w, 1, corners_x)
    x_weight = x_weight.reshape(num_rois, 1, bins_w, 1, corners_x)
    image_offset = rois[:, 0].long() * (height * width)
    columns = image_offset[:, None, None, None, None] + y_index * width + x_index
    values = y_weight * x_weight
    rows = torch.arange(num_rois * bins_h * bins_w, device=rois.device)
    rows = rows.reshape(num_rois, bins_h, bins_w, 1, 1).expand_as(columns)
    nonzero = values != 0
    indices = torch.stack([rows[nonzero], columns[nonzero]])  # (2, nnz)
    shape = (num_rois * bins_h * bins_w, num_images * height * width)
    return torch.sparse_coo_tensor(
        indices, values[nonzero], shape, check_invariants=False
    ).coalesce()


class _SparseRowMix(torch.autograd.Function):
    """``matrix @ table`` for a constant sparse ``matrix``; backward ``matrix^T @ grad``."""

    @staticmethod
    def forward(ctx, matrix: Tensor, table: Tensor) -> Tensor:
        ctx.matrix = matrix
        return torch.sparse.mm(matrix, table)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        return None, mix_rows_transposed(ctx.matrix, grad_out)


def mix_rows(matrix: Tensor, table: Tensor) -> Tensor:
    """``matrix @ table`` (differentiable in ``table``), in the matrix's dtype.

    Args:
        matrix (Tensor): sparse ``(M, R)``, constant.
        table (Tensor): dense ``(R, D)``; a half-precision table is promoted
            (the sparse product runs in the matrix's dtype) and the gradient
            cast back.

    Returns:
        Tensor: ``(M, D)`` in ``matrix.dtype``.
    """
    return _SparseRowMix.apply(matrix, table.to(matrix.dtype))


def mix_rows_transposed(matrix: Tensor, grad: Tensor) -> Tensor:
    """``matrix^T @ grad``: the gradient of :func:`mix_rows` with respect to its table."""
    return torch.sparse.mm(matrix.t().coalesce(), grad.to(matrix.dtype).contiguous())
