"""The factored attention equals the standard one: forward, every gradient, checkpoints.

Both implementations of :class:`PersonContextTransformer` share one set of
parameters. The standard one is itself checked against torch's own
``nn.MultiheadAttention`` here and against SDPA in ``test_cross_attention.py``.
"""

import zlib

import pytest
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from pcca_plugin.models import PCCABBoxHead, PersonContextTransformer, count_macs_per_person
from pcca_plugin.models.layers.cross_attention import (
    _PooledProjection,
    _ProjectedScores,
    check_attn_impl,
)

from .conftest import build_model, clips, make_sample

#: Relative tolerance of the agreement, per dtype (issue: 1e-10 in float64, 1e-5 in float32).
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}
#: A dropout rate high enough that a wrong mask or a missing dropout mass shows.
TEST_DROPOUT = 0.3
IN_CHANNELS, EMBED_DIMS, NUM_HEADS, NUM_LAYERS = 12, 16, 4, 3
CONTEXT_SIZE = (3, 2)


class FixedMaskDropout(nn.Module):
    """Dropout with a mask fixed by ``seed`` and the input shape (same in both models)."""

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
                setattr(
                    module, child_name, FixedMaskDropout(child.p, zlib.crc32(full_name.encode()))
                )


def twin_transformers(dtype, with_pos, dropout=TEST_DROPOUT, seed=0):
    """A standard and a factored transformer with the same parameters."""
    torch.manual_seed(seed)
    kwargs = dict(
        in_channels=IN_CHANNELS,
        embed_dims=EMBED_DIMS,
        num_layers=NUM_LAYERS,
        num_heads=NUM_HEADS,
        dropout=dropout,
        context_size=CONTEXT_SIZE,
        with_pos_encoding=with_pos,
    )
    standard = PersonContextTransformer(attn_impl='standard', **kwargs).to(dtype)
    # non-zero biases everywhere, so that every folded bias term is exercised
    with torch.no_grad():
        for name, param in standard.named_parameters():
            if name.endswith('bias'):
                param.normal_()
    factored = PersonContextTransformer(attn_impl='factored', **kwargs).to(dtype)
    factored.load_state_dict(standard.state_dict())
    return standard, factored


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    actual, expected = actual.detach(), expected.detach()
    return float((actual - expected).norm() / expected.norm().clamp_min(1e-300))


def run_with_grads(model, person, context, out_weights):
    """Forward, then the gradients of ``(out * out_weights).sum()`` w.r.t. inputs and params."""
    person = person.clone().requires_grad_(True)
    context = context.clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    out = model(person, context)
    (out * out_weights).sum().backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    grads['input person'], grads['input context'] = person.grad, context.grad
    return out.detach(), grads


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
@pytest.mark.parametrize('with_pos', [False, True])
@pytest.mark.parametrize('mode', ['eval', 'train-fixed-mask'])
def test_factored_equals_standard_forward_and_every_gradient(dtype, with_pos, mode):
    standard, factored = twin_transformers(dtype, with_pos)
    for model in (standard, factored):
        if mode == 'eval':
            model.eval()
        else:
            fix_dropout_masks(model)
            model.train()
    generator = torch.Generator().manual_seed(1)
    n, length = 5, CONTEXT_SIZE[0] * CONTEXT_SIZE[1]
    person = torch.randn(n, IN_CHANNELS, generator=generator, dtype=torch.float64).to(dtype)
    context = torch.randn(n, length, IN_CHANNELS, generator=generator, dtype=torch.float64)
    context = context.to(dtype)
    out_weights = torch.randn(n, EMBED_DIMS, generator=generator, dtype=torch.float64).to(dtype)
    out_s, grads_s = run_with_grads(standard, person, context, out_weights)
    out_f, grads_f = run_with_grads(factored, person, context, out_weights)
    tol = TOLERANCE[dtype]
    assert out_f.dtype == dtype
    assert relative_error(out_f, out_s) <= tol, relative_error(out_f, out_s)
    assert grads_s.keys() == grads_f.keys()
    for name, grad_s in grads_s.items():
        assert grad_s is not None and grads_f[name] is not None, name
        error = relative_error(grads_f[name], grad_s)
        assert error <= tol, f'gradient of {name}: relative error {error:.3g} > {tol}'
    if mode == 'train-fixed-mask':  # the masks are active: training differs from eval
        standard.eval()
        assert relative_error(standard(person, context), out_s) > 1e-3


def test_standard_path_equals_torch_multihead_attention():
    """``attend_standard`` against ``nn.MultiheadAttention.forward`` of the same layer."""
    torch.manual_seed(3)
    model = PersonContextTransformer(in_channels=8, embed_dims=16, num_heads=4).double().eval()
    with torch.no_grad():
        model.layers[0].attn.in_proj_bias.normal_()
    query = torch.randn(6, 16, dtype=torch.float64)
    key = torch.randn(6, 9, 16, dtype=torch.float64)
    value = torch.randn(6, 9, 16, dtype=torch.float64)
    layer = model.layers[0]
    expected, _ = layer.attn(query[:, None], key, value, need_weights=False)  # (N, 1, D)
    torch.testing.assert_close(
        layer.attend_standard(query, key, value), expected[:, 0], rtol=1e-12, atol=1e-12
    )


def test_custom_autograd_functions_pass_gradcheck():
    generator = torch.Generator().manual_seed(4)

    def rand(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64, requires_grad=True)

    query, context, weight = rand(3, 2, 5), rand(3, 4, 7), rand(5, 7)
    assert torch.autograd.gradcheck(_ProjectedScores.apply, (query, context, weight))
    weights = torch.rand(3, 2, 4, generator=generator, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(_PooledProjection.apply, (weights, context, weight))


@pytest.mark.parametrize('attn_impl', ['factored', 'standard'])
def test_empty_batch_gives_empty_output_and_zero_gradients(attn_impl):
    model = PersonContextTransformer(
        in_channels=8,
        embed_dims=8,
        num_heads=2,
        context_size=(2, 2),
        with_pos_encoding=True,
        attn_impl=attn_impl,
    )
    out = model(torch.randn(0, 8), torch.randn(0, 4, 8))
    assert out.shape == (0, 8)
    out.sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and not param.grad.any(), name


def test_bad_attn_impl_names_the_choices():
    with pytest.raises(ValueError, match="attn_impl='fast'.*factored.*standard"):
        PersonContextTransformer(in_channels=8, embed_dims=8, num_heads=2, attn_impl='fast')
    with pytest.raises(ValueError, match='factored'):
        PCCABBoxHead(
            in_channels=8, num_classes=3, embed_dims=8, num_heads=2, topk=(1,), attn_impl=''
        )
    assert check_attn_impl('standard') == 'standard'


def test_default_is_the_factored_one():
    assert (
        PersonContextTransformer(in_channels=8, embed_dims=8, num_heads=2).attn_impl == 'factored'
    )
    head = PCCABBoxHead(in_channels=8, num_classes=3, embed_dims=8, num_heads=2, topk=(1,))
    assert head.transformer.attn_impl == 'factored'


@pytest.mark.parametrize('with_pos', [False, True])
def test_factored_mac_count_matches_torch_flop_counter(with_pos):
    model = PersonContextTransformer(
        in_channels=24,
        embed_dims=16,
        num_layers=3,
        num_heads=4,
        dropout=0.0,
        context_size=(3, 3),
        with_pos_encoding=with_pos,
        attn_impl='factored',
    ).train()
    # With gradients and N below fold_break_even_persons (4.5 at these sizes): the
    # per-person form of training. Without gradients the cached fold is used
    # (tests/test_models/test_folded_weights_cache.py counts that one).
    n = 4
    counter = FlopCounterMode(display=False)
    with counter:
        model(torch.randn(n, 24), torch.randn(n, 9, 24))
    expected = count_macs_per_person(
        24, 9, 16, 3, num_heads=4, attn_impl='factored', with_pos_encoding=with_pos
    )
    assert counter.get_total_flops() / 2 == n * expected


def test_paper_size_factored_is_4x_cheaper():
    standard = count_macs_per_person(2304, 81, attn_impl='standard')
    factored = count_macs_per_person(2304, 81, attn_impl='factored')
    assert factored < 0.2e9 and standard / factored > 4, (standard, factored)


@pytest.mark.parametrize(
    'saved_with,loaded_with', [('standard', 'factored'), ('factored', 'standard')]
)
def test_checkpoint_of_one_impl_loads_into_the_other_with_the_same_scores(
    tmp_path, saved_with, loaded_with
):
    """A whole tiny detector: save with one implementation, load with the other, predict."""
    source = build_model(seed=5, bbox_head=dict(attn_impl=saved_with)).eval()
    path = tmp_path / 'tiny.pth'
    torch.save({'state_dict': source.state_dict(), 'meta': {}}, str(path))
    target = build_model(seed=6, bbox_head=dict(attn_impl=loaded_with)).eval()
    assert target.roi_head.bbox_head.transformer.attn_impl == loaded_with
    state = torch.load(str(path))['state_dict']  # default weights_only=True
    missing, unexpected = target.load_state_dict(state, strict=True)
    assert not missing and not unexpected
    samples = [make_sample([[4, 6, 30, 60], [50, 10, 80, 62], [0, 0, 10, 12]])]
    data = source.data_preprocessor(dict(inputs=clips(1, seed=7), data_samples=samples), False)
    with torch.no_grad():
        expected = source(**data, mode='predict')[0].pred_instances.scores
        scores = target(**data, mode='predict')[0].pred_instances.scores
    assert scores.shape == (3, 66)
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-6)
