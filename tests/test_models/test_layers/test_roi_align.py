"""RoIAlign's sparse kernel against mmcv's RoIAlign (the kernels it replaces), both ways."""

import mmcv.ops
import pytest
import torch

from pcca_plugin.models.layers import RoIAlign, SampledContext
from pcca_plugin.models.layers.roi_align import FeatureMap
from pcca_plugin.testing.models import awkward_rois

STRIDE = 8
FEAT_H, FEAT_W = 6, 11


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('aligned', [True, False])
@pytest.mark.parametrize('sampling_ratio', [0, 2])
@pytest.mark.parametrize('output_size', [(7, 7), (3, 5)])
def test_matches_mmcv_forward_and_backward(dtype, aligned, sampling_ratio, output_size):
    generator = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 5, FEAT_H, FEAT_W, generator=generator, dtype=dtype)
    rois = awkward_rois(2, generator, (FEAT_W * STRIDE, FEAT_H * STRIDE)).to(dtype)
    mmcv_layer = mmcv.ops.RoIAlign(output_size, 1 / STRIDE, sampling_ratio, 'avg', aligned)
    sparse_layer = RoIAlign(output_size, 1 / STRIDE, sampling_ratio, 'avg', aligned, 'sparse')

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
    matrix = RoIAlign((2, 2), 1 / STRIDE).matrix(rois, (1, FEAT_H, FEAT_W), torch.float32)
    matrix = matrix.to_dense()  # (4, H*W)
    torch.testing.assert_close(matrix.sum(dim=1), torch.ones(4))
    assert bool((matrix >= 0).all())


def test_batch_index_selects_the_image():
    feat = torch.zeros(2, 1, FEAT_H, FEAT_W)
    feat[1] = 1.0
    rois = torch.tensor([[1.0, 8.0, 8.0, 24.0, 24.0], [0.0, 8.0, 8.0, 24.0, 24.0]])
    out = RoIAlign(2, 1 / STRIDE, impl='sparse')(feat, rois)
    torch.testing.assert_close(out[0], torch.ones(1, 2, 2))
    torch.testing.assert_close(out[1], torch.zeros(1, 2, 2))


def test_no_rois_gives_empty_tokens_and_zero_gradient():
    feat = torch.randn(1, 4, FEAT_H, FEAT_W, requires_grad=True)
    tokens = RoIAlign((3, 3), 1 / STRIDE, impl='sparse').tokens(feat, torch.zeros(0, 5))
    assert tokens.shape == (0, 9, 4)
    tokens.sum().backward()
    assert float(feat.grad.abs().sum()) == 0.0


def test_max_pool_mode_is_refused():
    with pytest.raises(ValueError, match="pool_mode='avg' only"):
        RoIAlign(7, 1 / 16, pool_mode='max')


def test_auto_uses_the_sparse_kernel_on_cpu_and_rejects_unknown_names():
    layer = RoIAlign(3, 1 / STRIDE)
    assert layer.impl == 'auto'
    assert layer.uses_sparse(torch.zeros(1, 1, 2, 2))
    assert layer.uses_sparse(FeatureMap(torch.zeros(1, 1, 2, 2)))
    assert not RoIAlign(3, impl='mmcv').uses_sparse(torch.zeros(1))
    with pytest.raises(ValueError, match="roi_align_impl='fast' is not"):
        RoIAlign(3, impl='fast')
    with pytest.raises(ValueError, match="roi_align_impl='fast' is not"):
        layer.impl = 'fast'  # validated when set


@pytest.mark.parametrize('impl', ['sparse', 'mmcv'])
def test_tokens_are_the_bins_in_row_major_order_and_lazy_only_with_the_sparse_kernel(impl):
    generator = torch.Generator().manual_seed(2)
    feat = torch.randn(2, 3, FEAT_H, FEAT_W, generator=generator, dtype=torch.float64)
    rois = awkward_rois(2, generator, (FEAT_W * STRIDE, FEAT_H * STRIDE)).to(torch.float64)
    layer = RoIAlign((3, 5), 1 / STRIDE, impl=impl)
    expected = layer(feat, rois)  # (N, C, 3, 5)
    tokens = layer.tokens(feat, rois)  # (N, 15, C)
    assert tokens.is_contiguous()
    torch.testing.assert_close(tokens, expected.flatten(2).transpose(1, 2), rtol=0, atol=0)
    lazy = layer.tokens(feat, rois, lazy=True)
    assert isinstance(lazy, SampledContext) == (impl == 'sparse')
    if impl == 'sparse':
        assert (lazy.num_rois, lazy.num_tokens, lazy.channels) == (rois.shape[0], 15, 3)
        torch.testing.assert_close(lazy.tokens(), tokens, rtol=0, atol=0)


def test_one_feature_map_is_copied_to_channels_last_once():
    feature_map = FeatureMap(torch.randn(2, 3, FEAT_H, FEAT_W))
    rois = torch.tensor([[1.0, 8.0, 8.0, 24.0, 24.0]])
    person = RoIAlign(2, 1 / STRIDE, impl='sparse').tokens(feature_map, rois, lazy=True)
    context = RoIAlign(3, 1 / STRIDE, impl='sparse').tokens(feature_map, rois, lazy=True)
    assert person.table is context.table is feature_map.table
    assert feature_map.table.shape == (2 * FEAT_H * FEAT_W, 3)
