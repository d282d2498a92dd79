"""The cost model: multiply-adds of every form against torch's flop counter, and the choice.

The analytic counts of :mod:`pcca_plugin.models.layers.cost_model` are
compared with ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs / 2) on the
forward each form runs, and the choice of form is checked at the paper's sizes.
"""

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from pcca_plugin.models.layers import (
    CONTEXT_PROJECTIONS,
    PersonContextTransformer,
    SampledContext,
    count_macs_per_person,
)
from pcca_plugin.models.layers.cost_model import count_fold_macs, fold_break_even_persons
from pcca_plugin.testing.models import CONTEXT_TOKENS, sampled_context, twin_transformers

#: The paper's sizes for the cost decision (SlowFast-R101, 16x29 map, 81 tokens).
PAPER_CHANNELS, PAPER_DIMS, PAPER_POSITIONS, PAPER_TOKENS = 2304, 1024, 16 * 29, 81


#: The sizes of the counted transformers: C, L (a 3x3 grid), D, layers and heads.
CHANNELS, TOKENS, DIMS, LAYERS, HEADS = 24, 9, 16, 3, 4


def counted_transformer(**kwargs) -> PersonContextTransformer:
    """A transformer of the counted sizes, dropout off."""
    sizes = dict(embed_dims=DIMS, num_layers=LAYERS, num_heads=HEADS, context_size=(3, 3))
    return PersonContextTransformer(CHANNELS, dropout=0.0, **sizes, **kwargs)


def counted_macs(model, *inputs) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        model(*inputs)
    return counter.get_total_flops() / 2


def test_standard_mac_count_matches_torch_flop_counter():
    # train mode (dropout 0) and the math SDPA backend: the eval fast path and the
    # fused CPU attention kernel hide their products from the counter
    model = counted_transformer(attn_impl='standard').train()
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        macs = counted_macs(model, torch.randn(5, 24), torch.randn(5, 9, 24))
    assert macs == 5 * count_macs_per_person(24, 9, 16, 3, attn_impl='standard')


def test_paper_size_is_about_0_7_gmacs_per_person():
    macs = count_macs_per_person(2304, 81, attn_impl='standard')
    assert 0.6e9 < macs < 0.8e9, macs


@pytest.mark.parametrize('with_pos', [False, True])
def test_factored_mac_count_matches_torch_flop_counter(with_pos):
    model = counted_transformer(with_pos_encoding=with_pos, attn_impl='factored').train()
    # With gradients and N below the fold's break-even (4.5 at these sizes): the
    # per-person form of training. Without gradients the cached fold is used (below).
    n = 4
    context = torch.randn(n, 9, 24)
    assert model.execution_form(context) == 'factored'
    expected = count_macs_per_person(
        24, 9, 16, 3, num_heads=4, attn_impl='factored', with_pos_encoding=with_pos
    )
    assert counted_macs(model, torch.randn(n, 24), context) == n * expected


def test_paper_size_factored_is_4x_cheaper():
    standard = count_macs_per_person(2304, 81, attn_impl='standard')
    factored = count_macs_per_person(2304, 81, attn_impl='factored')
    assert factored < 0.2e9 and standard / factored > 4, (standard, factored)


@pytest.mark.parametrize('with_pos', [False, True])
def test_inference_mac_count_matches_torch_flop_counter(with_pos):
    model = counted_transformer(with_pos_encoding=with_pos).eval()
    person, context = torch.randn(5, 24), torch.randn(5, 9, 24)
    expected = count_macs_per_person(
        24, 9, 16, 3, num_heads=4, with_pos_encoding=with_pos, folded_weights=True
    )
    fold = count_fold_macs(24, 9, 16, 3, with_pos_encoding=with_pos)
    for fold_macs in (fold, 0):  # the first forward folds, the second reuses the cache
        with torch.no_grad():
            assert counted_macs(model, person, context) == 5 * expected + fold_macs


@pytest.mark.parametrize('with_grad', [True, False])
def test_per_clip_mac_count_matches_torch_flop_counter(with_grad):
    """The sparse RoIAlign product is not counted by either side (no positional encoding)."""
    _, model = twin_transformers(
        torch.float32, with_pos=False, dropout=0.0, context_projection='per_clip'
    )
    sampled = sampled_context(5, torch.float32)
    with torch.set_grad_enabled(with_grad):
        assert model.execution_form(sampled) == 'per_clip'
        macs = counted_macs(model, torch.randn(5, model.in_channels), sampled)
    positions = sampled.table.shape[0]
    assert macs == model.count_macs(5, CONTEXT_TOKENS, positions, with_grad)


def test_paper_size_inference_cost_and_break_even():
    training = count_macs_per_person(2304, 81)
    inference = count_macs_per_person(2304, 81, folded_weights=True)
    assert inference < 0.06e9 < 0.1e9 < training
    # break-even: fold cost over the per-person saving, from the sizes
    saving = training - inference
    assert fold_break_even_persons(2304) == pytest.approx(count_fold_macs(2304, 81) / saving)
    with pytest.raises(ValueError, match='factored'):
        count_macs_per_person(2304, 81, attn_impl='standard', folded_weights=True)


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
    assert model.execution_form(paper_sampled(32, 1)) == 'per_clip'
    # training: 2 persons per clip on 8 clips: the per-person products are cheaper
    assert model.execution_form(paper_sampled(16, 8)) == 'factored'
    with torch.no_grad():  # inference: the cached fold makes per-person cheap
        assert model.execution_form(paper_sampled(32, 1)) == 'folded'
        assert model.execution_form(paper_sampled(128, 1)) == 'per_clip'
    for persons, clips_ in ((32, 1), (16, 8), (4, 1)):
        for with_grad in (True, False):
            positions = clips_ * PAPER_POSITIONS
            forms = model.cost.form_macs(persons, PAPER_TOKENS, positions, with_grad)
            count = model.count_macs(persons, PAPER_TOKENS, positions, with_grad)
            assert count == min(forms.values())
    # a forced form is used whatever it costs; the standard implementation never projects per clip
    assert paper_transformer('per_clip').execution_form(paper_sampled(1, 8)) == 'per_clip'
    assert paper_transformer('per_person').execution_form(paper_sampled(128, 1)) != 'per_clip'
    model.attn_impl = 'standard'
    assert model.execution_form(paper_sampled(128, 1)) == 'standard'
    assert CONTEXT_PROJECTIONS == ('auto', 'per_person', 'per_clip')
