"""Mixed precision: ``run_train(amp=True)`` (``tools/train.py --amp``) on CPU in bfloat16,
and float32 attention scores."""

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.optim import OptimWrapper

from pcca_plugin.apis import run_train
from pcca_plugin.datasets.toy_sports import make_toy_sports
from pcca_plugin.engine.amp import DeviceAmpOptimWrapper, enable_amp
from pcca_plugin.models import PCCABBoxHead, PersonContextTransformer
from pcca_plugin.testing.inference import TINY_PCCA, TOY_SIZES

#: Two iterations of two clips: a class-balanced draw of 4 samples, batch 2, no validation.
TWO_ITERATIONS_CONFIG = """_base_ = [{base!r}]
model = dict(init_cfg=None)  # no pretrained backbone in the tests: a random one, frozen
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(_delete_=True, type='ClassBalancedSampler', num_samples=4, seed=0),
)
train_cfg = dict(max_epochs=1, val_begin=2)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=100))
"""
#: Scale of the query projection: a sharply peaked attention, as trained transformers have.
SHARP_QUERY_GAIN = 100.0
#: Scale of the context tokens: representable in float16, but their scores are not.
LARGE_CONTEXT = 1000.0
#: bfloat16 keeps 3 significant digits of the scores' operands: with a sharp attention the
#: output moves by ~10% (the same holds for torch's SDPA); NaN or inf would be far off.
AUTOCAST_RELATIVE_ERROR = 0.25
FP16_MAX = torch.finfo(torch.float16).max


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU (bfloat16) branch')
def test_train_two_iterations_with_amp_on_cpu(tmp_path, monkeypatch):

    make_toy_sports(str(tmp_path / 'data' / 'toy_sports'), seed=0, **TOY_SIZES)
    monkeypatch.chdir(tmp_path)
    config = tmp_path / 'tiny_two_iterations.py'
    config.write_text(TWO_ITERATIONS_CONFIG.format(base=TINY_PCCA))
    head_outputs, logit_grads, param_grads, hooked = [], [], [], set()

    def watch_head(module, inputs, output):
        if not isinstance(module, PCCABBoxHead) or not torch.is_grad_enabled():
            return
        head_outputs.append((output.dtype, module.transformer.attn_impl))
        output.register_hook(lambda grad: logit_grads.append(grad.detach().clone()))
        for param in module.parameters():
            if id(param) not in hooked and param.requires_grad:
                hooked.add(id(param))
                param.register_post_accumulate_grad_hook(
                    lambda p: param_grads.append(bool(torch.isfinite(p.grad).all()))
                )

    handle = torch.nn.modules.module.register_module_forward_hook(watch_head)
    try:
        runner = run_train(str(config), work_dir=str(tmp_path / 'w'), amp=True)
    finally:
        handle.remove()
    assert isinstance(runner.optim_wrapper, DeviceAmpOptimWrapper)
    assert runner.optim_wrapper.cast_dtype == torch.bfloat16
    assert runner.iter == 2
    # the head (factored attention, the default) ran in bfloat16 in both iterations
    assert head_outputs == [(torch.bfloat16, 'factored')] * 2
    assert len(logit_grads) == 2 and all(torch.isfinite(g).all() for g in logit_grads)
    assert any(g.abs().sum() > 0 for g in logit_grads)
    assert param_grads and all(param_grads)
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert torch.isfinite(torch.tensor(loss)) and loss > 0


def test_config_switch_and_enable_amp():
    cfg = Config.fromfile(TINY_PCCA)
    assert cfg.amp is False  # configs/_base_/default_runtime.py: off by default
    assert enable_amp(cfg).optim_wrapper.type == 'DeviceAmpOptimWrapper'
    assert cfg.optim_wrapper.optimizer.type == 'SGD'  # the optimizer is kept
    assert enable_amp(cfg).optim_wrapper.type == 'DeviceAmpOptimWrapper'  # idempotent
    cfg = Config(dict(optim_wrapper=dict(type='AmpOptimWrapper', optimizer=dict(type='SGD'))))
    assert enable_amp(cfg).optim_wrapper.type == 'AmpOptimWrapper'
    with pytest.raises(ValueError, match="--amp.*'MyWrapper'.*OptimWrapper"):
        enable_amp(Config(dict(optim_wrapper=dict(type='MyWrapper'))))
    with pytest.raises(ValueError, match='x.py: amp=True.*no optim_wrapper'):
        enable_amp(Config(dict()), 'x.py: amp=True')


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU (bfloat16) branch')
def test_cpu_wrapper_autocasts_to_bfloat16_and_steps():
    model = torch.nn.Linear(4, 3)
    wrapper = DeviceAmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    assert isinstance(wrapper, OptimWrapper)
    before = model.weight.detach().clone()
    with wrapper.optim_context(model):
        out = model(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16
    wrapper.update_params(out.float().pow(2).mean())
    assert not torch.equal(model.weight, before)
    wrapper.load_state_dict(wrapper.state_dict())
    with pytest.raises(ValueError, match='bfloat16 only'):
        DeviceAmpOptimWrapper(dtype='float16', optimizer=torch.optim.SGD(model.parameters(), lr=1))


def first_layer_scores(model, person, context):
    """The float32 attention scores of layer 1, computed the standard way (for scale only)."""
    layer = model.layers[0]
    d, heads = model.embed_dims, model.num_heads
    w_q, w_k, _ = layer.attn.in_proj_weight.chunk(3)
    b_q, b_k, _ = layer.attn.in_proj_bias.chunk(3)
    q = F.linear(model.person_proj(person), w_q, b_q).reshape(len(person), heads, -1)
    k = F.linear(model.context_proj(context), w_k, b_k)
    k = k.reshape(*context.shape[:2], heads, -1)
    return torch.einsum('nhe,nlhe->nhl', q, k) / (d // heads) ** 0.5


@pytest.mark.parametrize('attn_impl', ['factored', 'standard'])
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_large_features_under_autocast_do_not_overflow(attn_impl, dtype):
    torch.manual_seed(0)
    model = PersonContextTransformer(
        in_channels=12, embed_dims=16, num_heads=4, dropout=0.0, attn_impl=attn_impl
    )
    with torch.no_grad():
        model.layers[0].attn.in_proj_weight[:16] *= SHARP_QUERY_GAIN
    person = torch.randn(3, 12)
    context = torch.randn(3, 9, 12) * LARGE_CONTEXT
    with torch.no_grad():
        scores = first_layer_scores(model, person, context)
        expected = model(person, context)
    # the scores themselves do not fit in float16: computed in it, they would be inf
    assert scores.abs().max() > FP16_MAX
    assert torch.isinf(scores.to(torch.float16)).any()
    person.requires_grad_(True)
    with torch.autocast(device_type='cpu', dtype=dtype):
        out = model(person, context)
    assert out.dtype == dtype
    assert torch.isfinite(out).all()
    error = (out.float() - expected).norm() / expected.norm()
    assert error < AUTOCAST_RELATIVE_ERROR, error
    out.sum().backward()
    assert torch.isfinite(person.grad).all()
    for name, param in model.named_parameters():
        assert param.grad is None or torch.isfinite(param.grad).all(), name
