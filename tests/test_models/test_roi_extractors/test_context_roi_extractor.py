"""ContextRoIExtractor against a slow float64 loop reference, and its bad input."""

import math

import pytest
import torch

from pcca_plugin.models import ContextRoIExtractor, temporal_pool
from pcca_plugin.models.layers import RoIAlign, SampledContext
from pcca_plugin.testing.models import awkward_rois

SAMPLING_RATIO = 2
STRIDE = 4


def bilinear(fmap, y, x):
    """One bilinear sample of ``fmap (C, H, W)`` at continuous ``(y, x)``.

    mmcv/torchvision convention: zero beyond one cell outside the map, clamp
    to the border inside that margin.
    """
    channels, height, width = fmap.shape
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return torch.zeros(channels, dtype=fmap.dtype)
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(math.floor(y)), int(math.floor(x))
    if y0 >= height - 1:
        y0 = y1 = height - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= width - 1:
        x0 = x1 = width - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    return (
        (1 - ly) * (1 - lx) * fmap[:, y0, x0]
        + (1 - ly) * lx * fmap[:, y0, x1]
        + ly * (1 - lx) * fmap[:, y1, x0]
        + ly * lx * fmap[:, y1, x1]
    )


def roi_align_ref(fmap, box, out_h, out_w, scale):
    """Average RoIAlign of one box ``(x1, y1, x2, y2)`` with aligned=True; (C, out_h, out_w)."""
    x1, y1, x2, y2 = (v * scale - 0.5 for v in box)
    bin_h, bin_w = (y2 - y1) / out_h, (x2 - x1) / out_w
    out = torch.zeros(fmap.shape[0], out_h, out_w, dtype=fmap.dtype)
    for ph in range(out_h):
        for pw in range(out_w):
            acc = torch.zeros(fmap.shape[0], dtype=fmap.dtype)
            for iy in range(SAMPLING_RATIO):
                for ix in range(SAMPLING_RATIO):
                    y = y1 + ph * bin_h + (iy + 0.5) * bin_h / SAMPLING_RATIO
                    x = x1 + pw * bin_w + (ix + 0.5) * bin_w / SAMPLING_RATIO
                    acc += bilinear(fmap, y, x)
            out[:, ph, pw] = acc / SAMPLING_RATIO**2
    return out


def clip_ref(box, img_h, img_w):
    """Clip ``(x1, y1, x2, y2)`` to ``[0, img_w] x [0, img_h]``."""
    bx1, by1, bx2, by2 = box
    return (
        min(max(bx1, 0.0), img_w),
        min(max(by1, 0.0), img_h),
        min(max(bx2, 0.0), img_w),
        min(max(by2, 0.0), img_h),
    )


def extractor_ref(pathways, rois, img_shapes, context_scale, person_size, context_size):
    """Loop reference: temporal mean, concat, extended box, clip, RoIAlign."""
    pooled = []
    for feat in pathways:  # (B, C_i, T_i, H, W)
        acc = torch.zeros_like(feat[:, :, 0])
        for t in range(feat.shape[2]):
            acc += feat[:, :, t]
        pooled.append(acc / feat.shape[2])
    v = torch.cat(pooled, dim=1)  # (B, C, H, W)
    persons, contexts = [], []
    for roi in rois.tolist():
        b = int(roi[0])
        img_h, img_w = img_shapes[b]
        x1, y1, x2, y2 = roi[1:]

        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        hw, hh = (x2 - x1) * context_scale / 2, (y2 - y1) * context_scale / 2
        person = roi_align_ref(
            v[b], clip_ref((x1, y1, x2, y2), img_h, img_w), person_size, person_size, 1 / STRIDE
        )
        persons.append(person.reshape(person.shape[0], -1).max(dim=1).values)
        context = roi_align_ref(
            v[b],
            clip_ref((cx - hw, cy - hh, cx + hw, cy + hh), img_h, img_w),
            context_size[0],
            context_size[1],
            1 / STRIDE,
        )
        contexts.append(context.reshape(context.shape[0], -1).t())
    return torch.stack(persons), torch.stack(contexts)


@pytest.fixture()
def pathways():
    generator = torch.Generator().manual_seed(0)
    slow = torch.randn(2, 3, 2, 5, 7, generator=generator, dtype=torch.float64)
    fast = torch.randn(2, 2, 4, 5, 7, generator=generator, dtype=torch.float64)
    return slow, fast


ROIS = torch.tensor(
    [
        [0, 4.0, 3.0, 14.0, 15.0],  # inside; context box crosses the top-left border
        [0, 10.5, 2.25, 13.0, 19.5],  # thin box
        [1, 18.0, 9.0, 26.0, 20.0],  # context box crosses the right image border (26)
        [1, 0.0, 0.0, 26.0, 20.0],  # the whole image
    ],
    dtype=torch.float64,
)


@pytest.mark.parametrize('context_scale,context_size', [(2.0, (9, 9)), (1.5, (3, 5))])
def test_matches_loop_reference(pathways, context_scale, context_size):
    img_shapes = [(20, 28), (20, 26)]
    extractor = ContextRoIExtractor(
        featmap_stride=STRIDE,
        context_scale=context_scale,
        context_output_size=context_size,
        sampling_ratio=SAMPLING_RATIO,
    )
    person, context = extractor(pathways, ROIS, img_shapes)
    ref_person, ref_context = extractor_ref(
        pathways, ROIS, img_shapes, context_scale, 7, context_size
    )
    assert person.shape == (4, 5)
    assert context.shape == (4, context_size[0] * context_size[1], 5)
    torch.testing.assert_close(person, ref_person, atol=1e-5, rtol=0)
    torch.testing.assert_close(context, ref_context, atol=1e-5, rtol=0)


def test_clipping_changes_features(pathways):
    """Without clipping the context box of RoI 2 would read past x = 26."""
    extractor = ContextRoIExtractor(featmap_stride=STRIDE, sampling_ratio=SAMPLING_RATIO)
    _, clipped = extractor(pathways, ROIS[2:3], [(20, 28), (20, 26)])
    _, unclipped = extractor(pathways, ROIS[2:3], [(20, 28), (20, 40)])
    assert not torch.allclose(clipped, unclipped)


def test_single_tensor_and_max_pool(pathways):
    slow, _ = pathways
    extractor = ContextRoIExtractor(
        featmap_stride=STRIDE, sampling_ratio=SAMPLING_RATIO, temporal_pool_mode='max'
    )
    person, context = extractor(slow, ROIS)
    ref_person, _ = extractor_ref(
        (slow.amax(dim=2, keepdim=True),), ROIS, [(20, 28)] * 2, 2.0, 7, (9, 9)
    )
    torch.testing.assert_close(person, ref_person, atol=1e-5, rtol=0)
    assert context.shape == (4, 81, 3)


def test_degenerate_boxes_give_finite_features(pathways):
    extractor = ContextRoIExtractor(featmap_stride=STRIDE)
    rois = torch.tensor(
        [
            [0, 5.0, 5.0, 5.0, 5.0],  # zero area
            [0, 100.0, 100.0, 120.0, 130.0],  # outside the image
            [1, -30.0, -10.0, -2.0, -1.0],  # outside, negative side
        ],
        dtype=torch.float64,
    )
    person, context = extractor(pathways, rois, [(20, 28), (20, 26)])
    assert torch.isfinite(person).all() and torch.isfinite(context).all()
    # the box outside the image reads the border, not zeros
    assert person[1].abs().sum() > 0


@pytest.mark.parametrize(
    'bad,message',
    [
        ([0, float('nan'), 1.0, 5.0, 5.0], 'NaN/Inf'),
        ([0, 1.0, 1.0, float('inf'), 5.0], 'NaN/Inf'),
        ([0, 8.0, 1.0, 5.0, 5.0], 'inverted'),
        ([2, 1.0, 1.0, 5.0, 5.0], 'batch index'),
    ],
)
def test_bad_boxes_are_rejected(pathways, bad, message):
    extractor = ContextRoIExtractor(featmap_stride=STRIDE)
    rois = torch.tensor([[0, 1.0, 1.0, 6.0, 6.0], bad], dtype=torch.float64)
    with pytest.raises(ValueError, match=message) as info:
        extractor(pathways, rois)
    assert 'RoI 1' in str(info.value)


def test_channel_mismatch_names_both_values(pathways):
    extractor = ContextRoIExtractor(featmap_stride=STRIDE, in_channels=7)
    with pytest.raises(ValueError, match=r'5 channels.*in_channels=7'):
        extractor(pathways, ROIS)


def test_no_rois(pathways):
    extractor = ContextRoIExtractor(featmap_stride=STRIDE)
    person, context = extractor(pathways, ROIS[:0])
    assert person.shape == (0, 5) and context.shape == (0, 81, 5)


def test_holds_one_roi_op_for_persons_and_one_for_context():
    extractor = ContextRoIExtractor(featmap_stride=STRIDE, context_output_size=(3, 5))
    ops = [module for module in extractor.modules() if isinstance(module, RoIAlign)]
    assert ops == [extractor.person_roi_layer, extractor.context_roi_layer]
    assert extractor.person_roi_layer.output_size == (7, 7)
    assert extractor.context_roi_layer.output_size == (3, 5)


def test_roi_align_implementations_agree():
    """The same person features, tokens and gradients with the sparse and mmcv kernels."""
    generator = torch.Generator().manual_seed(1)
    height, width, stride = 6, 11, 8
    slow = torch.randn(2, 6, 4, height, width, generator=generator)
    fast = torch.randn(2, 2, 8, height, width, generator=generator)
    rois = awkward_rois(2, generator, (width * stride, height * stride))
    outputs = {}
    for impl in ('sparse', 'mmcv'):
        extractor = ContextRoIExtractor(featmap_stride=stride, roi_align_impl=impl)
        feats = [slow.clone().requires_grad_(), fast.clone().requires_grad_()]
        person, context = extractor(feats, rois, [(height * stride, width * stride)] * 2)
        (person.square().sum() + context.sin().sum()).backward()
        outputs[impl] = (person, context, feats[0].grad, feats[1].grad)
    for got, expected in zip(outputs['sparse'], outputs['mmcv']):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_auto_uses_the_sparse_product_on_cpu_and_rejects_unknown_names():
    extractor = ContextRoIExtractor(featmap_stride=STRIDE)
    assert extractor.roi_align_impl == 'auto'
    assert extractor.context_roi_layer.uses_sparse(torch.zeros(1, 1, 2, 2))
    mmcv = ContextRoIExtractor(roi_align_impl='mmcv')
    assert not mmcv.person_roi_layer.uses_sparse(torch.zeros(1))
    assert not mmcv.context_roi_layer.uses_sparse(torch.zeros(1))
    with pytest.raises(ValueError, match="roi_align_impl='fast' is not"):
        ContextRoIExtractor(roi_align_impl='fast')
    extractor.roi_align_impl = 'mmcv'  # both ops follow
    assert extractor.person_roi_layer.impl == extractor.context_roi_layer.impl == 'mmcv'


@pytest.mark.parametrize('lazy_context', [False, True])
def test_lazy_context_is_a_sparse_product_only_with_the_sparse_kernel(pathways, lazy_context):
    for impl in ('sparse', 'mmcv'):
        extractor = ContextRoIExtractor(featmap_stride=STRIDE, roi_align_impl=impl)
        _, context = extractor(pathways, ROIS, lazy_context=lazy_context)
        lazy = lazy_context and impl == 'sparse'
        assert isinstance(context, SampledContext) == lazy
        tokens = context.tokens() if lazy else context
        assert tokens.shape == (4, 81, 5)


def test_temporal_mean_gradient_equals_torch_mean():
    """temporal_pool's mean divides the small gradient before broadcasting it; same values."""
    x = torch.randn(2, 3, 4, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(temporal_pool, (x,))
    torch.testing.assert_close(temporal_pool(x), x.mean(dim=2))
