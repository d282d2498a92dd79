"""The folded form's cache: built once, reused, rebuilt whenever a folded parameter changes.

:class:`PersonContextTransformer` caches the folded weights (``W_K^h P``,
``W_V^h P``, ...) for forwards without gradients for them, and folds them in
the forward (with gradients) above the break-even. The outputs and gradients
of the folded form against the standard one are in ``test_cross_attention.py``.
"""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from pcca_plugin.models.layers.cost_model import (
    count_fold_macs,
    count_macs_per_person,
    fold_break_even_persons,
)
from pcca_plugin.testing.models import (
    CONTEXT_TOKENS,
    EMBED_DIMS,
    IN_CHANNELS,
    NUM_HEADS,
    NUM_LAYERS,
    TOLERANCE,
    fix_dropout_masks,
    parameter_gradients,
    person_and_context,
    relative_error,
    twin_transformers,
)


def assert_close(actual, expected, dtype, what='output'):
    error = relative_error(actual, expected)
    assert error <= TOLERANCE[dtype], f'{what}: relative error {error:.3g}'


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
@pytest.mark.parametrize('with_pos', [False, True])
@pytest.mark.parametrize('mode', ['eval', 'train-fixed-mask'])
def test_cached_fold_equals_standard_and_is_reused(dtype, with_pos, mode):
    standard, factored = twin_transformers(dtype, with_pos)
    for model in (standard, factored):
        if mode == 'eval':
            model.eval()
        else:  # dropout on: the dropout mass s_h must be kept with the folded bias
            fix_dropout_masks(model)
            model.train()
    person, context = person_and_context(5, dtype)
    assert factored.cached_fold is None
    with torch.no_grad():
        expected = standard(person, context)
        out = factored(person, context)
        folded = factored.cached_fold
        again = factored(person, context)
    assert folded is not None and factored.cached_fold is folded  # built once, reused
    assert out.dtype == dtype
    assert_close(out, expected, dtype)
    assert torch.equal(again, out)
    with torch.inference_mode():  # reused under inference mode too
        assert torch.equal(factored(person, context), out)
    assert factored.cached_fold is folded


def test_empty_batch_without_gradients():
    _, factored = twin_transformers(torch.float64, with_pos=True)
    with torch.no_grad():
        out = factored.eval()(*person_and_context(0, torch.float64))
    assert out.shape == (0, EMBED_DIMS) and factored.cached_fold is not None


def test_cache_follows_an_optimizer_step_load_state_dict_and_double():
    standard, factored = twin_transformers(torch.float32, with_pos=True)
    standard.eval(), factored.eval()
    person, context = person_and_context(4, torch.float32)
    with torch.no_grad():
        before = factored(person, context)
    folded = factored.cached_fold

    # an in-place optimizer step (with gradients: the cache is not used, then dropped)
    optimizer = torch.optim.SGD(factored.parameters(), lr=0.5)
    factored(person, context).square().sum().backward()
    optimizer.step()
    with torch.no_grad():
        stepped = factored(person, context)
        standard.load_state_dict(factored.state_dict())
        expected = standard(person, context)
    assert factored.cached_fold is not folded
    assert relative_error(stepped, before) > 1e-3  # the step changed the outputs
    assert_close(stepped, expected, torch.float32, 'after an optimizer step')

    # an in-place change of one folded parameter without an optimizer (version counter)
    folded = factored.cached_fold
    with torch.no_grad():
        factored.layers[1].attn.in_proj_weight.mul_(1.5)
        changed = factored(person, context)
        standard.load_state_dict(factored.state_dict())
        assert_close(changed, standard(person, context), torch.float32, 'after mul_')
    assert factored.cached_fold is not folded

    # load_state_dict of other weights
    other, _ = twin_transformers(torch.float32, with_pos=True, seed=9)
    folded = factored.cached_fold
    factored.load_state_dict(other.state_dict())
    with torch.no_grad():
        loaded = factored(person, context)
        expected = other.eval()(person, context)
    assert factored.cached_fold is not folded
    assert_close(loaded, expected, torch.float32, 'after load_state_dict')

    # .double(): the fold is rebuilt in float64
    factored.double(), other.double()
    person64, context64 = person_and_context(4, torch.float64)
    with torch.no_grad():
        out64 = factored(person64, context64)
        expected64 = other(person64, context64)
    assert out64.dtype == torch.float64
    assert factored.cached_fold[0].key.dtype == torch.float64
    assert_close(out64, expected64, torch.float64, 'after .double()')

    # switching the implementation and back: still the same outputs
    factored.attn_impl = 'standard'
    with torch.no_grad():
        assert_close(factored(person64, context64), expected64, torch.float64)
    factored.attn_impl = 'factored'
    with torch.no_grad():
        assert_close(factored(person64, context64), expected64, torch.float64)
    factored.clear_fold_cache()
    assert factored.cached_fold is None


def test_cache_never_reaches_the_state_dict(tmp_path):
    standard, factored = twin_transformers(torch.float32, with_pos=True)
    keys_before = list(factored.state_dict())
    with torch.no_grad():
        factored.eval()(*person_and_context(3, torch.float32))
    assert factored.cached_fold is not None
    state = factored.state_dict()
    assert list(state) == keys_before == list(standard.state_dict())
    path = tmp_path / 'transformer.pth'
    torch.save(state, str(path))
    loaded = torch.load(str(path))  # weights_only
    assert all(not name.startswith('_fold') for name in loaded)
    standard.load_state_dict(loaded, strict=True)


def test_training_does_not_use_a_stale_cache():
    """A cached fold, then a change of the weights and a training step: standard's gradients."""
    standard, factored = twin_transformers(torch.float64, with_pos=True)
    for model in (standard, factored):
        fix_dropout_masks(model)
    person, context = person_and_context(5, torch.float64)
    with torch.no_grad():
        factored.eval()(person, context)  # the cache holds the fold of these weights
        for model in (standard, factored):  # the same change to both (tensor.data: no version)
            model.context_proj.weight.data = model.context_proj.weight.data * 2
    standard.train(), factored.train()
    grads = []
    for model in (standard, factored):
        model.zero_grad(set_to_none=True)
        context_in = context.clone().requires_grad_(True)
        model(person, context_in).square().sum().backward()
        grads.append(parameter_gradients(model) | {'ctx': context_in.grad})
    with torch.no_grad():  # the stale fold is not used without gradients either
        assert_close(
            factored.eval()(person, context), standard.eval()(person, context), torch.float64
        )
    for name, grad in grads[0].items():
        assert_close(grads[1][name], grad, torch.float64, f'gradient of {name}')


def test_a_fold_built_under_inference_mode_serves_autograd():
    standard, factored = twin_transformers(torch.float32, with_pos=False)
    person, context = person_and_context(4, torch.float32)
    with torch.inference_mode():  # the fold built under inference mode ...
        factored.eval()(person, context)
    grads = []
    for model in (standard.eval(), factored):
        model.requires_grad_(False)
        context_in = context.clone().requires_grad_(True)
        model(person, context_in).square().sum().backward()  # ... is usable with autograd
        grads.append(context_in.grad)
    assert factored.cached_fold is not None
    assert_close(grads[1], grads[0], torch.float32, 'gradient of the context')


@pytest.mark.parametrize('with_pos', [False, True])
def test_training_folds_in_the_forward_above_the_break_even(with_pos):
    """Gradients equal standard's on both sides of the break-even; the counter shows which path."""
    standard, factored = twin_transformers(torch.float64, with_pos=with_pos)
    for model in (standard, factored):
        fix_dropout_masks(model)
    break_even = fold_break_even_persons(
        IN_CHANNELS,
        EMBED_DIMS,
        NUM_HEADS,
        CONTEXT_TOKENS,
        num_layers=NUM_LAYERS,
        with_pos_encoding=with_pos,
    )
    kwargs = dict(
        in_channels=IN_CHANNELS,
        num_tokens=CONTEXT_TOKENS,
        embed_dims=EMBED_DIMS,
        num_layers=NUM_LAYERS,
        num_heads=NUM_HEADS,
        with_pos_encoding=with_pos,
    )
    per_person = count_macs_per_person(**kwargs)
    folded = count_macs_per_person(**kwargs, folded_weights=True)
    fold = count_fold_macs(IN_CHANNELS, CONTEXT_TOKENS, EMBED_DIMS, NUM_LAYERS, with_pos)
    assert folded < per_person
    for n in (int(break_even), int(break_even) + 1):  # per-person at N <= break-even, fold above
        assert (n > break_even) == (fold + n * folded < n * per_person)  # the fold is cheaper
        person, context = person_and_context(n, torch.float64, seed=n)
        assert factored.execution_form(context) == ('folded' if n > break_even else 'factored')
        grads = []
        for model in (standard.train(), factored.train()):
            model.zero_grad(set_to_none=True)
            counter = FlopCounterMode(display=False)
            with counter:
                out = model(person, context)
            out.sin().sum().backward()
            grads.append(parameter_gradients(model))
        expected = fold + n * folded if n > break_even else n * per_person
        assert counter.get_total_flops() / 2 == expected
        for name, grad in grads[0].items():
            assert_close(grads[1][name], grad, torch.float64, f'N={n}: gradient of {name}')
