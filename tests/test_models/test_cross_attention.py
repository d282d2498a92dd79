"""PersonContextTransformer against equations (1)-(3) written with SDPA by hand."""

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from pcca_plugin.models import PersonContextTransformer, count_macs_per_person


def reference_forward(model, person, context):
    """Eq. (1)-(3) from the module's weights, with scaled_dot_product_attention."""
    d, heads = model.embed_dims, model.num_heads
    q = F.linear(person, model.person_proj.weight, model.person_proj.bias)  # Q^0 = A, (N, D)
    ctx = F.linear(context, model.context_proj.weight, model.context_proj.bias)  # (N, L, D)
    key_in = ctx if model.pos_encoding is None else ctx + model.pos_encoding()
    n, length = ctx.shape[:2]
    for layer in model.layers:
        w_q, w_k, w_v = layer.attn.in_proj_weight.split(d)
        b_q, b_k, b_v = layer.attn.in_proj_bias.split(d)
        qh = F.linear(q, w_q, b_q).reshape(n, heads, 1, d // heads)
        kh = F.linear(key_in, w_k, b_k).reshape(n, length, heads, d // heads).transpose(1, 2)
        vh = F.linear(ctx, w_v, b_v).reshape(n, length, heads, d // heads).transpose(1, 2)
        attended = F.scaled_dot_product_attention(qh, kh, vh).reshape(n, d)
        attended = F.linear(attended, layer.attn.out_proj.weight, layer.attn.out_proj.bias)
        x = F.layer_norm(attended + q, (d,), layer.norm1.weight, layer.norm1.bias)  # eq. (2)
        hidden = F.relu(F.linear(x, layer.ffn[0].weight, layer.ffn[0].bias))
        ffn = F.linear(hidden, layer.ffn[3].weight, layer.ffn[3].bias)
        q = F.layer_norm(ffn + x, (d,), layer.norm2.weight, layer.norm2.bias)  # eq. (3)
    return q


@pytest.mark.parametrize('attn_impl', ['factored', 'standard'])
@pytest.mark.parametrize('with_pos', [False, True])
def test_matches_equations(with_pos, attn_impl):
    torch.manual_seed(0)
    model = PersonContextTransformer(
        in_channels=12,
        embed_dims=16,
        num_layers=3,
        num_heads=4,
        context_size=(3, 2),
        with_pos_encoding=with_pos,
        attn_impl=attn_impl,
    )
    model = model.double().eval()
    person = torch.randn(5, 12, dtype=torch.float64)
    context = torch.randn(5, 6, 12, dtype=torch.float64)
    out = model(person, context)
    assert out.shape == (5, 16)
    torch.testing.assert_close(
        out, reference_forward(model, person, context), atol=1e-10, rtol=1e-10
    )


def test_context_is_shared_by_all_layers_and_persons_are_independent():
    """Each person only sees its own context tokens."""
    torch.manual_seed(1)
    model = PersonContextTransformer(in_channels=8, embed_dims=8, num_layers=2, num_heads=2).eval()
    person, context = torch.randn(3, 8), torch.randn(3, 4, 8)
    full = model(person, context)
    changed = context.clone()
    changed[1] += 1.0
    out = model(person, changed)
    torch.testing.assert_close(out[[0, 2]], full[[0, 2]])
    assert not torch.allclose(out[1], full[1])


def test_positional_encoding_breaks_permutation_invariance():
    torch.manual_seed(2)
    person, context = torch.randn(2, 8), torch.randn(2, 4, 8)
    perm = torch.tensor([3, 1, 0, 2])
    plain = PersonContextTransformer(in_channels=8, embed_dims=8, num_layers=1, num_heads=2).eval()
    torch.testing.assert_close(plain(person, context), plain(person, context[:, perm]))
    with_pos = PersonContextTransformer(
        in_channels=8,
        embed_dims=8,
        num_layers=1,
        num_heads=2,
        context_size=(2, 2),
        with_pos_encoding=True,
    ).eval()
    assert not torch.allclose(with_pos(person, context), with_pos(person, context[:, perm]))


def test_mac_count_matches_torch_flop_counter():
    # train mode (dropout 0) and the math SDPA backend: the eval fast path and the
    # fused CPU attention kernel hide their products from the counter
    # (the factored implementation's count: tests/test_models/test_factored_attention.py)
    model = PersonContextTransformer(
        in_channels=24, embed_dims=16, num_layers=3, num_heads=4, dropout=0.0, attn_impl='standard'
    ).train()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        model(torch.randn(5, 24), torch.randn(5, 9, 24))
    assert counter.get_total_flops() / 2 == 5 * count_macs_per_person(
        24, 9, 16, 3, attn_impl='standard'
    )


def test_paper_size_is_about_0_7_gmacs_per_person():
    macs = count_macs_per_person(2304, 81, attn_impl='standard')
    assert 0.6e9 < macs < 0.8e9, macs


def test_bad_arguments():
    with pytest.raises(ValueError, match='not divisible'):
        PersonContextTransformer(in_channels=8, embed_dims=10, num_heads=4)
    with pytest.raises(ValueError, match='context_size'):
        PersonContextTransformer(in_channels=8, embed_dims=8, num_heads=2, with_pos_encoding=True)
    model = PersonContextTransformer(in_channels=8, embed_dims=8, num_heads=2)
    with pytest.raises(ValueError, match='in_channels=8'):
        model(torch.randn(2, 6), torch.randn(2, 4, 6))


def test_empty_batch_keeps_shape_and_graph():
    model = PersonContextTransformer(in_channels=8, embed_dims=8, num_heads=2)
    out = model(torch.randn(0, 8), torch.randn(0, 4, 8))
    assert out.shape == (0, 8)
    out.sum().backward()
    assert model.person_proj.weight.grad is not None
