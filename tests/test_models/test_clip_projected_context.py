"""Context projected once per clip: equal to the per-person and standard forms, chosen by cost."""

import pytest
import torch

from pcca_plugin.models import PersonContextTransformer
from pcca_plugin.models.layers.cross_attention import CONTEXT_PROJECTIONS
from pcca_plugin.models.layers.sparse_roi_align import SampledContext, roi_align_matrix
from pcca_plugin.models.roi_extractors.context_roi_extractor import _TemporalMean

from .conftest import build_model, clips, make_sample
from .test_factored_attention import (
    CONTEXT_SIZE,
    EMBED_DIMS,
    IN_CHANNELS,
    TOLERANCE,
    fix_dropout_masks,
    relative_error,
    twin_transformers,
)

#: Two clips of a 5x7 map at stride 8.
NUM_CLIPS, MAP_H, MAP_W, STRIDE = 2, 5, 7, 8
#: The paper's sizes for the cost decision (SlowFast-R101, 16x29 map, 81 tokens).
PAPER_CHANNELS, PAPER_DIMS, PAPER_POSITIONS, PAPER_TOKENS = 2304, 1024, 16 * 29, 81


def sampled_context(num_persons: int, dtype: torch.dtype, seed: int = 2) -> SampledContext:
    """Random map (a leaf that takes a gradient) and boxes spread over both clips."""
    generator = torch.Generator().manual_seed(seed)
    rows = NUM_CLIPS * MAP_H * MAP_W
    table = torch.randn(rows, IN_CHANNELS, generator=generator, dtype=torch.float64).to(dtype)
    corner = torch.rand(num_persons, 2, generator=generator) * torch.tensor([MAP_W, MAP_H]) * STRIDE
    size = torch.rand(num_persons, 2, generator=generator) * 30 + 4
    index = (torch.arange(num_persons) % NUM_CLIPS).float()
    rois = torch.cat([index[:, None], corner, corner + size], dim=1)
    matrix = roi_align_matrix(
        rois, CONTEXT_SIZE, 1 / STRIDE, (NUM_CLIPS, MAP_H, MAP_W), 0, True, dtype
    )
    return SampledContext(
        table.requires_grad_(), matrix, num_persons, CONTEXT_SIZE[0] * CONTEXT_SIZE[1]
    )


def forward_backward(model, person, sampled, out_weights, materialise: bool):
    """Output and gradients (parameters, person input, the map) of one forward+backward."""
    person = person.clone().requires_grad_(True)
    table = sampled.table.detach().clone().requires_grad_(True)
    sampled = sampled._replace(table=table)
    context = sampled.tokens() if materialise else sampled
    model.zero_grad(set_to_none=True)
    out = model(person, context)
    (out * out_weights).sum().backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    grads['input person'], grads['input map'] = person.grad, table.grad
    return out.detach(), grads


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
@pytest.mark.parametrize('with_pos', [False, True])
@pytest.mark.parametrize('mode', ['eval', 'train-fixed-mask'])
def test_per_clip_equals_per_person_and_standard(dtype, with_pos, mode):
    standard, per_clip = twin_transformers(dtype, with_pos)
    _, per_person = twin_transformers(dtype, with_pos)
    per_clip.context_projection, per_person.context_projection = 'per_clip', 'per_person'
    for model in (standard, per_clip, per_person):
        if mode == 'eval':
            model.eval()
        else:
            fix_dropout_masks(model)
            model.train()
    num_persons = 5
    generator = torch.Generator().manual_seed(1)
    person = torch.randn(num_persons, IN_CHANNELS, generator=generator, dtype=torch.float64)
    person = person.to(dtype)
    out_weights = torch.randn(num_persons, EMBED_DIMS, generator=generator, dtype=torch.float64)
    out_weights = out_weights.to(dtype)
    sampled = sampled_context(num_persons, dtype)
    expected, expected_grads = forward_backward(standard, person, sampled, out_weights, True)
    tol = TOLERANCE[dtype]
    for model in (per_clip, per_person):
        assert model.projects_per_clip(sampled) == (model is per_clip)
        out, grads = forward_backward(model, person, sampled, out_weights, False)
        assert out.dtype == dtype
        assert relative_error(out, expected) <= tol, relative_error(out, expected)
        assert grads.keys() == expected_grads.keys()
        for name, grad in expected_grads.items():
            assert grad is not None and grads[name] is not None, name
            error = relative_error(grads[name], grad)
            assert error <= tol, f'{model.context_projection}: gradient of {name}: {error:.3g}'


def test_per_clip_does_not_keep_the_projected_tokens_for_backward():
    """Saved for the backward pass: the projected map (R x D), never the tokens (N x L x D)."""
    _, model = twin_transformers(torch.float64, with_pos=False, dropout=0.0)
    model.context_projection = 'per_clip'
    num_persons = 6
    sampled = sampled_context(num_persons, torch.float64)
    saved_shapes = []

    def pack(tensor):
        saved_shapes.append(tuple(tensor.shape))
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = model(torch.randn(num_persons, IN_CHANNELS, dtype=torch.float64), sampled)
    tokens = (num_persons, sampled.num_tokens, EMBED_DIMS)
    assert (sampled.table.shape[0], EMBED_DIMS) in saved_shapes  # the projected map
    assert tokens not in saved_shapes
    out.sum().backward()  # the tokens are formed again for the backward pass
    assert sampled.table.grad is not None and bool(sampled.table.grad.abs().sum() > 0)


def paper_transformer(context_projection='auto'):
    return PersonContextTransformer(
        PAPER_CHANNELS, PAPER_DIMS, context_size=(9, 9), context_projection=context_projection
    )


def paper_sampled(num_persons: int, num_clips: int) -> SampledContext:
    """Only the sizes matter for the decision: a table with R rows, no data."""
    table = torch.empty(num_clips * PAPER_POSITIONS, 1)
    return SampledContext(table, torch.empty(0), num_persons, PAPER_TOKENS)


def test_auto_projects_per_clip_only_when_that_costs_less():
    model = paper_transformer()
    # training: 32 persons on one clip share one projection of the 16x29 map
    assert model.projects_per_clip(paper_sampled(32, 1))
    # training: 2 persons per clip on 8 clips: the per-person products are cheaper
    assert not model.projects_per_clip(paper_sampled(16, 8))
    with torch.no_grad():  # inference: the cached fold makes per-person cheap
        assert not model.projects_per_clip(paper_sampled(32, 1))
        assert model.projects_per_clip(paper_sampled(128, 1))
    for persons, clips_ in ((32, 1), (16, 8), (4, 1)):
        for with_grad in (True, False):
            forms = model._context_form_macs(
                persons, PAPER_TOKENS, clips_ * PAPER_POSITIONS, with_grad
            )
            count = model.count_macs(persons, PAPER_TOKENS, clips_ * PAPER_POSITIONS, with_grad)
            assert count == min(forms.values())
    # a forced form is used whatever it costs; the standard implementation never projects per clip
    assert paper_transformer('per_clip').projects_per_clip(paper_sampled(1, 8))
    assert not paper_transformer('per_person').projects_per_clip(paper_sampled(128, 1))
    model.attn_impl = 'standard'
    assert not model.projects_per_clip(paper_sampled(128, 1))


def test_bad_context_projection_names_the_choices():
    with pytest.raises(ValueError, match='per_clip'):
        PersonContextTransformer(8, 8, num_heads=2, context_projection='clip')
    assert CONTEXT_PROJECTIONS == ('auto', 'per_person', 'per_clip')


def test_roi_head_gives_the_same_loss_and_gradients_with_every_path():
    """The detector's loss and backbone gradients: per clip == per person == mmcv RoIAlign."""
    samples = [
        make_sample([[4, 6, 30, 60], [50, 10, 80, 62]], [[4, 6, 30, 60]], [[3]]),
        make_sample([[10, 12, 40, 50]], [[10, 12, 40, 50]], [[5]]),
    ]

    def loss_and_grad(**roi_head):
        model = build_model(**roi_head)
        data = model.data_preprocessor(dict(inputs=clips(2), data_samples=samples), True)
        loss = model(**data, mode='loss')['loss_action_cls']
        loss.backward()
        return loss.detach(), model.backbone.slow_path.conv1.conv.weight.grad

    # mmcv's RoIAlign hands over the tokens as a tensor: always the per-person form
    expected = loss_and_grad(bbox_roi_extractor=dict(roi_align_impl='mmcv'))
    for form in ('per_clip', 'per_person'):
        got = loss_and_grad(bbox_head=dict(context_projection=form))
        torch.testing.assert_close(got[0], expected[0], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(got[1], expected[1], rtol=1e-4, atol=1e-6)


def test_temporal_mean_gradient_equals_torch_mean():
    x = torch.randn(2, 3, 4, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_TemporalMean.apply, (x,))
    torch.testing.assert_close(_TemporalMean.apply(x), x.mean(dim=2))


def test_per_clip_under_bf16_autocast_is_finite_and_close():
    _, model = twin_transformers(torch.float32, with_pos=False, dropout=0.0)
    model.context_projection = 'per_clip'
    sampled = sampled_context(4, torch.float32)
    person = torch.randn(4, IN_CHANNELS)
    reference = model(person, sampled).detach()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = model(person, sampled)
    out.float().sum().backward()
    assert torch.isfinite(out.float()).all() and torch.isfinite(sampled.table.grad).all()
    assert relative_error(out.float(), reference) < 5e-2


def test_clip_autograd_functions_pass_gradcheck():
    """Scores and pooling over the projected tokens (formed again in backward), float64."""
    from pcca_plugin.models.layers.clip_projected_context import (
        ProjectedContext,
        _ClipPooling,
        _ClipScores,
    )

    generator = torch.Generator().manual_seed(5)
    num_persons, heads, head_dims, dims = 3, 2, 3, 4
    sampled = sampled_context(num_persons, torch.float64)
    projected_map = torch.randn(
        sampled.table.shape[0], dims, generator=generator, dtype=torch.float64
    ).requires_grad_()
    query = torch.randn(
        num_persons, heads, head_dims, generator=generator, dtype=torch.float64
    ).requires_grad_()
    key_weight = torch.randn(
        heads, head_dims, dims, generator=generator, dtype=torch.float64
    ).requires_grad_()
    weights = torch.rand(
        num_persons, heads, sampled.num_tokens, generator=generator, dtype=torch.float64
    ).requires_grad_()

    def scores(q, w, m):
        context = ProjectedContext(sampled, m)  # the map's gradient arrives through its handle
        return _ClipScores.apply(q, w, context.handle, context)

    def pooling(a, m):
        context = ProjectedContext(sampled, m)
        return _ClipPooling.apply(a, context.handle, context)

    def both(q, w, a, m):  # two consumers sum their token gradients in one buffer
        context = ProjectedContext(sampled, m)
        out = _ClipScores.apply(q, w, context.handle, context)
        return out + _ClipPooling.apply(a, context.handle, context).sum(dim=-1, keepdim=True)

    assert torch.autograd.gradcheck(scores, (query, key_weight, projected_map))
    assert torch.autograd.gradcheck(pooling, (weights, projected_map))
    assert torch.autograd.gradcheck(both, (query, key_weight, weights, projected_map))


def test_per_clip_with_no_persons_gives_empty_output_and_zero_gradients():
    _, model = twin_transformers(torch.float32, with_pos=True, dropout=0.0)
    model.context_projection = 'per_clip'
    sampled = sampled_context(0, torch.float32)
    out = model(torch.randn(0, IN_CHANNELS), sampled)
    assert out.shape == (0, EMBED_DIMS)
    out.sum().backward()
    assert sampled.table.grad is not None and not sampled.table.grad.any()
    for name, param in model.named_parameters():
        assert param.grad is not None and not param.grad.any(), name
