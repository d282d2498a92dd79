"""PersonContextTransformer: the equations, and every execution form against the standard one.

The standard form is checked against equations (1)-(3) written with torch's
``scaled_dot_product_attention`` and against ``nn.MultiheadAttention``; every
other form (factored, folded, per clip) against the standard form with the
same parameters: outputs and every gradient (parameters, person features, the
context tokens or the feature map), float64 and float32, with and without the
positional encoding, in eval mode and in train mode with fixed dropout masks.
"""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from pcca_plugin.models.layers import PersonContextTransformer, RoIAlign, SampledContext
from pcca_plugin.testing.models import (
    CONTEXT_SIZE,
    EMBED_DIMS,
    IN_CHANNELS,
    TOLERANCE,
    fix_dropout_masks,
    parameter_gradients,
    person_and_context,
    relative_error,
    sampled_context,
    twin_transformers,
    with_table,
)

#: Persons below and above the fold's break-even at the test sizes (3.8 and 4.1 persons).
FEW_PERSONS, MANY_PERSONS = 3, 6
#: (name, form the forward must run, context given as, persons, context_projection,
#: parameters frozen): every execution form the transformer has.
FORM_CASES = [
    ('factored', 'factored', 'tokens', FEW_PERSONS, 'auto', False),
    ('folded in the forward', 'folded', 'tokens', MANY_PERSONS, 'auto', False),
    ('folded, cached (frozen weights)', 'folded', 'tokens', FEW_PERSONS, 'auto', True),
    ('factored from a sampled map', 'factored', 'sampled', FEW_PERSONS, 'per_person', False),
    ('folded from a sampled map', 'folded', 'sampled', MANY_PERSONS, 'per_person', False),
    ('per clip', 'per_clip', 'sampled', FEW_PERSONS, 'per_clip', False),
]


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


def test_layer_attention_equals_torch_multihead_attention():
    """A layer's ``MultiHead(Q, C, C)`` against ``nn.MultiheadAttention`` with its parameters."""
    torch.manual_seed(3)
    model = PersonContextTransformer(in_channels=8, embed_dims=16, num_heads=4).double().eval()
    layer = model.layers[0]
    with torch.no_grad():
        layer.attn.in_proj_bias.normal_()
    reference = nn.MultiheadAttention(16, 4, batch_first=True).double()
    reference.load_state_dict(layer.attn.state_dict())  # the same names: checkpoints load
    query = torch.randn(6, 16, dtype=torch.float64)
    tokens = torch.randn(6, 9, 16, dtype=torch.float64)
    key_pos = torch.randn(1, 9, 16, dtype=torch.float64)
    expected, _ = reference(query[:, None], tokens + key_pos, tokens, need_weights=False)
    got = layer.attention(query, tokens, key_pos)  # (N, D)
    torch.testing.assert_close(got, expected[:, 0], rtol=1e-12, atol=1e-12)


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


def test_bad_arguments():
    with pytest.raises(ValueError, match='not divisible'):
        PersonContextTransformer(in_channels=8, embed_dims=10, num_heads=4)
    with pytest.raises(ValueError, match='context_size'):
        PersonContextTransformer(in_channels=8, embed_dims=8, num_heads=2, with_pos_encoding=True)
    model = PersonContextTransformer(in_channels=8, embed_dims=8, num_heads=2)
    with pytest.raises(ValueError, match='in_channels=8'):
        model(torch.randn(2, 6), torch.randn(2, 4, 6))


def test_bad_choices_name_the_choices_when_set():
    with pytest.raises(ValueError, match="attn_impl='fast'.*factored.*standard"):
        PersonContextTransformer(in_channels=8, embed_dims=8, num_heads=2, attn_impl='fast')
    with pytest.raises(ValueError, match='per_clip'):
        PersonContextTransformer(8, 8, num_heads=2, context_projection='clip')
    model = PersonContextTransformer(in_channels=8, embed_dims=8, num_heads=2)
    assert model.attn_impl == 'factored'  # the default
    with pytest.raises(ValueError, match="attn_impl='fast'"):
        model.attn_impl = 'fast'  # validated when set, not in every forward
    with pytest.raises(ValueError, match="context_projection='clip'"):
        model.context_projection = 'clip'
    model.attn_impl = 'standard'
    assert model.attn_impl == 'standard' and model.context_projection == 'auto'


def run(model, person, context, out_weights):
    """Output and gradients (parameters, person, the context tokens or the map) of a forward."""
    person = person.clone().requires_grad_(True)
    if isinstance(context, SampledContext):
        leaf = context.table.detach().clone().requires_grad_(True)
        context = with_table(context, leaf)
    else:
        leaf = context = context.clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    out = model(person, context)
    (out * out_weights).sum().backward()
    grads = parameter_gradients(model)
    grads['input person'], grads['input context'] = person.grad, leaf.grad
    return out.detach(), grads


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
@pytest.mark.parametrize('with_pos', [False, True])
@pytest.mark.parametrize('mode', ['eval', 'train-fixed-mask'])
@pytest.mark.parametrize(
    'name,form,given_as,num_persons,context_projection,frozen',
    FORM_CASES,
    ids=[case[0] for case in FORM_CASES],
)
def test_every_form_equals_standard(
    name, form, given_as, num_persons, context_projection, frozen, mode, with_pos, dtype
):
    """Outputs and every gradient of each form against the standard one's, same parameters."""
    standard, model = twin_transformers(dtype, with_pos, context_projection=context_projection)
    for module in (standard, model):
        if mode == 'eval':
            module.eval()
        else:  # dropout on: the dropout mass s_h must be kept with the moved biases
            fix_dropout_masks(module)
            module.train()
        module.requires_grad_(not frozen)
    person = person_and_context(num_persons, dtype)[0]
    sampled = sampled_context(num_persons, dtype)
    context = sampled if given_as == 'sampled' else sampled.tokens().detach()
    generator = torch.Generator().manual_seed(3)
    out_weights = torch.randn(num_persons, EMBED_DIMS, generator=generator, dtype=torch.float64)
    out_weights = out_weights.to(dtype)
    assert standard.execution_form(context) == 'standard'
    assert model.execution_form(context) == form
    expected, expected_grads = run(standard, person, context, out_weights)
    out, grads = run(model, person, context, out_weights)
    if frozen:  # the cached fold was built and used
        assert model.cached_fold is not None
    tol = TOLERANCE[dtype]
    assert out.dtype == dtype
    assert relative_error(out, expected) <= tol, relative_error(out, expected)
    assert grads.keys() == expected_grads.keys()
    for key, expected_grad in expected_grads.items():
        if frozen and not key.startswith('input'):
            assert expected_grad is None and grads[key] is None, key
            continue
        assert expected_grad is not None and grads[key] is not None, key
        error = relative_error(grads[key], expected_grad)
        assert error <= tol, f'{name}: gradient of {key}: relative error {error:.3g} > {tol}'
    if mode == 'train-fixed-mask':  # the masks are active: training differs from eval
        tokens = sampled.tokens().detach() if given_as == 'sampled' else context
        assert relative_error(standard.eval()(person, tokens), expected) > 1e-3


@pytest.mark.parametrize(
    'form,given_as,num_persons,context_projection',
    [  # the fold's break-even is 2.7 persons at these sizes
        ('factored', 'tokens', 2, 'auto'),
        ('folded', 'tokens', 4, 'auto'),
        ('per_clip', 'sampled', 3, 'per_clip'),
    ],
)
def test_every_form_passes_gradcheck(form, given_as, num_persons, context_projection):
    """float64 gradcheck of a small transformer in each form: the custom autograd functions.

    The inputs are the person features, the context (tokens, or the map whose
    sparse product the per-clip form projects; every layer's scores and pooling
    share its gradient buffer), the context projection and the first layer's
    ``[W_Q; W_K; W_V]``.
    """
    torch.manual_seed(4)
    model = PersonContextTransformer(
        in_channels=5,
        embed_dims=4,
        num_layers=2,
        num_heads=2,
        context_size=(2, 2),
        with_pos_encoding=True,
        context_projection=context_projection,
    )
    model = model.double().eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith('bias'):
                param.normal_()
    generator = torch.Generator().manual_seed(5)
    person = torch.randn(num_persons, 5, generator=generator, dtype=torch.float64)
    feat = torch.randn(2, 5, 2, 3, generator=generator, dtype=torch.float64)
    rois = torch.tensor([[0.0, 2.0, 1.0, 22.0, 14.0], [1.0, 9.0, 4.0, 20.0, 16.0]])
    rois = rois.repeat(num_persons, 1)[:num_persons]
    sampled = RoIAlign((2, 2), 1 / 8, impl='sparse').tokens(feat, rois, lazy=True)
    names = ['context_proj.weight', 'layers.0.attn.in_proj_weight']
    params = [dict(model.named_parameters())[n].detach().clone() for n in names]

    def forward(person, table, *weights):
        context = with_table(sampled, table)
        if given_as == 'tokens':
            context = context.tokens()
        assert model.execution_form(context) == form
        return functional_call(model, dict(zip(names, weights)), (person, context))

    inputs = [person, sampled.table.detach()] + params
    inputs = [x.clone().requires_grad_(True) for x in inputs]
    assert torch.autograd.gradcheck(forward, inputs)


def test_cached_fold_gives_the_input_gradients_in_gradcheck():
    """Frozen weights: the cached fold is used with autograd on; gradcheck of the inputs."""
    _, model = twin_transformers(torch.float64, with_pos=True, dropout=0.0)
    model.requires_grad_(False)
    person, context = person_and_context(FEW_PERSONS, torch.float64)
    inputs = (person.requires_grad_(True), context.requires_grad_(True))
    assert model.execution_form(context) == 'folded'
    assert torch.autograd.gradcheck(model, inputs)
    assert model.cached_fold is not None


@pytest.mark.parametrize(
    'attn_impl,given_as,context_projection',
    [
        ('standard', 'tokens', 'auto'),
        ('factored', 'tokens', 'auto'),
        ('factored', 'sampled', 'per_clip'),
    ],
)
def test_no_persons_give_empty_output_and_zero_gradients(attn_impl, given_as, context_projection):
    model = PersonContextTransformer(
        in_channels=IN_CHANNELS,
        embed_dims=EMBED_DIMS,
        num_heads=4,
        context_size=CONTEXT_SIZE,
        with_pos_encoding=True,
        attn_impl=attn_impl,
        context_projection=context_projection,
    )
    sampled = sampled_context(0, torch.float32)
    context = sampled if given_as == 'sampled' else torch.randn(0, 6, IN_CHANNELS)
    out = model(torch.randn(0, IN_CHANNELS), context)
    assert out.shape == (0, EMBED_DIMS)
    out.sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and not param.grad.any(), name
    if given_as == 'sampled':
        assert sampled.table.grad is not None and not sampled.table.grad.any()


@pytest.mark.parametrize(
    'form,given_as,num_persons,context_projection',
    [
        ('standard', 'tokens', FEW_PERSONS, 'auto'),
        ('factored', 'tokens', FEW_PERSONS, 'auto'),
        ('folded', 'tokens', MANY_PERSONS, 'auto'),
        ('per_clip', 'sampled', FEW_PERSONS, 'per_clip'),
    ],
)
def test_every_form_under_bf16_autocast_is_finite_and_close(
    form, given_as, num_persons, context_projection
):
    standard, model = twin_transformers(
        torch.float32, with_pos=False, dropout=0.0, context_projection=context_projection
    )
    model = standard if form == 'standard' else model
    sampled = sampled_context(num_persons, torch.float32)
    context = sampled if given_as == 'sampled' else sampled.tokens()
    person = torch.randn(num_persons, IN_CHANNELS)
    assert model.execution_form(context) == form
    reference = model(person, context).detach()
    sampled.table.grad = None
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = model(person, context)
    out.float().sum().backward()
    assert torch.isfinite(out.float()).all() and torch.isfinite(sampled.table.grad).all()
    assert relative_error(out.float(), reference) < 5e-2
