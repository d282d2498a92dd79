"""SparseRoIAlign against mmcv's RoIAlign (the kernels it replaces): forward and backward."""

import pytest
import torch
from mmcv.ops import RoIAlign

from pcca_plugin.models import ContextRoIExtractor
from pcca_plugin.models.layers.sparse_roi_align import (
    SparseRoIAlign,
    channels_last_table,
    roi_align_matrix,
    sparse_roi_align,
)

STRIDE = 8
FEAT_H, FEAT_W = 6, 11
IMG_H, IMG_W = FEAT_H * STRIDE, FEAT_W * STRIDE


def awkward_rois(num_images: int, generator: torch.Generator) -> torch.Tensor:
    """Boxes mmcv must handle: inside, across and beyond the border, tiny, huge, inverted-free.

    Returns ``(N, 5)`` as ``(batch_index, x1, y1, x2, y2)`` in pixels.
    """
    boxes = [
        [2.0, 3.0, 30.0, 40.0],  # inside
        [-20.0, -12.0, 15.0, 9.0],  # across the top-left border
        [70.0, 30.0, 120.0, 70.0],  # across the bottom-right border
        [100.0, 60.0, 140.0, 90.0],  # wholly outside (reads zeros and the margin)
        [10.0, 10.0, 10.0, 10.0],  # zero area
        [5.3, 7.9, 5.8, 8.1],  # sub-pixel
        [-40.0, -40.0, 130.0, 90.0],  # larger than the map: several samples per bin
        [0.0, 0.0, float(IMG_W), float(IMG_H)],  # exactly the map
    ]
    random = torch.rand(8, 4, generator=generator) * torch.tensor([IMG_W, IMG_H] * 2)
    random = torch.cat(
        [random[:, :2].minimum(random[:, 2:]), random[:, :2].maximum(random[:, 2:])], 1
    )
    boxes = torch.cat([torch.tensor(boxes), random])
    index = torch.arange(boxes.shape[0]) % num_images
    return torch.cat([index[:, None].to(boxes.dtype), boxes], dim=1)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('aligned', [True, False])
@pytest.mark.parametrize('sampling_ratio', [0, 2])
@pytest.mark.parametrize('output_size', [(7, 7), (3, 5)])
def test_matches_mmcv_forward_and_backward(dtype, aligned, sampling_ratio, output_size):
    generator = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 5, FEAT_H, FEAT_W, generator=generator, dtype=dtype)
    rois = awkward_rois(2, generator).to(dtype)
    mmcv_layer = RoIAlign(output_size, 1 / STRIDE, sampling_ratio, 'avg', aligned)
    sparse_layer = SparseRoIAlign(output_size, 1 / STRIDE, sampling_ratio, 'avg', aligned)

    feat_mmcv = feat.clone().requires_grad_()
    feat_sparse = feat.clone().requires_grad_()
    expected = mmcv_layer(feat_mmcv, rois)  # (N, C, h, w)
    got = sparse_layer(feat_sparse, rois)
    assert got.shape == expected.shape == (rois.shape[0], 5, *output_size)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got, expected, **tol)
    # the boxes beyond the margin really read zeros, and the others really read features
    assert float(expected.detach().abs().sum()) > 0

    grad_out = torch.randn(expected.shape, generator=generator, dtype=dtype)
    expected.backward(grad_out)
    got.backward(grad_out)
    torch.testing.assert_close(feat_sparse.grad, feat_mmcv.grad, **tol)


def test_matrix_rows_are_sample_means():
    """A bin wholly inside the map has weights summing to 1 (a mean of bilinear samples)."""
    rois = torch.tensor([[0.0, 8.0, 8.0, 40.0, 40.0]])
    matrix = roi_align_matrix(rois, (2, 2), 1 / STRIDE, (1, FEAT_H, FEAT_W)).to_dense()
    torch.testing.assert_close(matrix.sum(dim=1), torch.ones(4))
    assert bool((matrix >= 0).all())


def test_batch_index_selects_the_image():
    feat = torch.zeros(2, 1, FEAT_H, FEAT_W)
    feat[1] = 1.0
    rois = torch.tensor([[1.0, 8.0, 8.0, 24.0, 24.0], [0.0, 8.0, 8.0, 24.0, 24.0]])
    out = SparseRoIAlign(2, 1 / STRIDE)(feat, rois)
    torch.testing.assert_close(out[0], torch.ones(1, 2, 2))
    torch.testing.assert_close(out[1], torch.zeros(1, 2, 2))


def test_no_rois_gives_empty_tokens_and_zero_gradient():
    feat = torch.randn(1, 4, FEAT_H, FEAT_W, requires_grad=True)
    tokens = sparse_roi_align(
        channels_last_table(feat), torch.zeros(0, 5), (3, 3), 1 / STRIDE, (1, FEAT_H, FEAT_W)
    )
    assert tokens.shape == (0, 9, 4)
    tokens.sum().backward()
    assert float(feat.grad.abs().sum()) == 0.0


def test_max_pool_mode_is_refused():
    with pytest.raises(ValueError, match="pool_mode='avg' only"):
        SparseRoIAlign(7, 1 / 16, pool_mode='max')


def test_extractor_implementations_agree():
    """ContextRoIExtractor gives the same person features, tokens and gradients either way."""
    generator = torch.Generator().manual_seed(1)
    slow = torch.randn(2, 6, 4, FEAT_H, FEAT_W, generator=generator)
    fast = torch.randn(2, 2, 8, FEAT_H, FEAT_W, generator=generator)
    rois = awkward_rois(2, generator)
    outputs = {}
    for impl in ('sparse', 'mmcv'):
        extractor = ContextRoIExtractor(featmap_stride=STRIDE, roi_align_impl=impl)
        feats = [slow.clone().requires_grad_(), fast.clone().requires_grad_()]
        person, context = extractor(feats, rois, [(IMG_H, IMG_W)] * 2)
        (person.square().sum() + context.sin().sum()).backward()
        outputs[impl] = (person, context, feats[0].grad, feats[1].grad)
    for got, expected in zip(outputs['sparse'], outputs['mmcv']):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_auto_uses_the_sparse_product_on_cpu_and_rejects_unknown_names():
    extractor = ContextRoIExtractor(featmap_stride=STRIDE)
    assert extractor.roi_align_impl == 'auto'
    assert extractor.uses_sparse_roi_align(torch.zeros(1, 1, 2, 2))
    assert not ContextRoIExtractor(roi_align_impl='mmcv').uses_sparse_roi_align(torch.zeros(1))
    with pytest.raises(ValueError, match="roi_align_impl='fast' is not"):
        ContextRoIExtractor(roi_align_impl='fast')
