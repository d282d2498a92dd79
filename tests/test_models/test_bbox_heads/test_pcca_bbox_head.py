"""PCCABBoxHead: against an independent float64 reference of the paper's equations (1)-(3),
its attention implementations and their checkpoints.

The reference below is written from section 2.2 of Ning et al. (2021) and
Vaswani et al. (2017) in plain numpy, one person and one head at a time, with
the module's weights read from its ``state_dict``; it calls none of the
package's attention code (nor torch's). Inputs are the real person features
and context tokens of the tiny detector's ``ContextRoIExtractor``.
"""

import numpy as np
import pytest
import torch

from pcca_plugin.models import PCCABBoxHead
from pcca_plugin.testing.models import build_model, clips, make_sample

#: LayerNorm epsilon of torch.nn.LayerNorm (the module's default).
LN_EPS = 1e-5
#: float64 agreement, relative to the logits' scale.
RELATIVE_TOLERANCE = 1e-10


def layer_norm(x, gain, bias):
    """LN over the last axis (Ba et al. 2016), biased variance."""
    mean = x.mean()
    var = ((x - mean) ** 2).mean()
    return (x - mean) / np.sqrt(var + LN_EPS) * gain + bias


def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def reference_logits(state, person, context, num_layers, num_heads, key_pos=None):
    """Eq. (1)-(3) and the linear classifier, one person at a time.

    Args:
        state (dict[str, np.ndarray]): the head's parameters, by ``state_dict`` name.
        person (np.ndarray): ``A``, ``(N, C)``.
        context (np.ndarray): context tokens, ``(N, L, C)``.
        key_pos (np.ndarray, optional): positional encoding added to the keys, ``(L, D)``.

    Returns:
        np.ndarray: logits ``(N, K)``.
    """
    t = 'transformer.'
    logits = []
    for a_i, c_i in zip(person, context):
        q = state[t + 'person_proj.weight'] @ a_i + state[t + 'person_proj.bias']  # Q^0 (1)
        tokens = c_i @ state[t + 'context_proj.weight'].T + state[t + 'context_proj.bias']
        d = q.shape[0]
        e = d // num_heads
        for j in range(num_layers):
            p = f'{t}layers.{j}.'
            w_q, w_k, w_v = np.split(state[p + 'attn.in_proj_weight'], 3)
            b_q, b_k, b_v = np.split(state[p + 'attn.in_proj_bias'], 3)
            keys_in = tokens if key_pos is None else tokens + key_pos
            heads = []
            for h in range(num_heads):  # MultiHead(Q, C, C): scaled dot-product per head
                rows = slice(h * e, (h + 1) * e)
                q_h = w_q[rows] @ q + b_q[rows]
                k_h = keys_in @ w_k[rows].T + b_k[rows]  # (L, E)
                v_h = tokens @ w_v[rows].T + b_v[rows]  # (L, E)
                weights = softmax(k_h @ q_h / np.sqrt(e))
                heads.append(weights @ v_h)
            multi_head = state[p + 'attn.out_proj.weight'] @ np.concatenate(heads)
            multi_head = multi_head + state[p + 'attn.out_proj.bias']
            x = layer_norm(
                multi_head + q, state[p + 'norm1.weight'], state[p + 'norm1.bias']
            )  # (2)
            hidden = np.maximum(state[p + 'ffn.0.weight'] @ x + state[p + 'ffn.0.bias'], 0)
            ffn = state[p + 'ffn.3.weight'] @ hidden + state[p + 'ffn.3.bias']
            q = layer_norm(ffn + x, state[p + 'norm2.weight'], state[p + 'norm2.bias'])  # (3)
        logits.append(state['fc_cls.weight'] @ q + state['fc_cls.bias'])
    return np.stack(logits)


@pytest.mark.parametrize('with_pos', [False, True])
@pytest.mark.parametrize('attn_impl', ['factored', 'standard'])
def test_head_logits_match_the_paper_equations(attn_impl, with_pos):
    model = build_model(
        seed=11, bbox_head=dict(attn_impl=attn_impl, with_pos_encoding=with_pos)
    ).eval()
    sample = make_sample([[4, 6, 30, 60], [50, 10, 80, 62], [20, 2, 44, 50]])
    data = model.data_preprocessor(dict(inputs=clips(1, seed=12), data_samples=[sample]), False)
    rois = torch.cat([torch.zeros(3, 1), sample.proposals.bboxes], dim=1)  # (N, 5)
    head = model.roi_head.bbox_head.double()
    with torch.no_grad():
        # non-zero biases, so that every bias term of the equations matters
        for name, param in head.named_parameters():
            if name.endswith('bias'):
                param.normal_(generator=torch.Generator().manual_seed(len(name)))
        feats = model.extract_feat(data['inputs'])
        person, context = model.roi_head.bbox_roi_extractor(feats, rois, [sample.img_shape])
        person, context = person.double(), context.double()  # (N, C), (N, L, C)
        logits = head(person, context).numpy()
    state = {k: v.numpy() for k, v in head.state_dict().items()}
    key_pos = None
    if with_pos:  # learned row + column embeddings: pos[r * w + c] = row[r] + col[c]
        row = state['transformer.pos_encoding.row_embed.weight']  # (h, D)
        col = state['transformer.pos_encoding.col_embed.weight']  # (w, D)
        key_pos = (row[:, None, :] + col[None, :, :]).reshape(-1, row.shape[1])  # (L, D)
    expected = reference_logits(
        state,
        person.numpy(),
        context.numpy(),
        head.transformer.num_layers,
        head.transformer.num_heads,
        key_pos,
    )
    assert logits.shape == expected.shape == (3, 66)
    error = np.abs(logits - expected).max() / np.abs(expected).max()
    assert error <= RELATIVE_TOLERANCE, error


def test_bad_attn_impl_names_the_choices():
    with pytest.raises(ValueError, match='factored'):
        PCCABBoxHead(
            in_channels=8, num_classes=3, embed_dims=8, num_heads=2, topk=(1,), attn_impl=''
        )


def test_default_is_the_factored_attention():
    head = PCCABBoxHead(in_channels=8, num_classes=3, embed_dims=8, num_heads=2, topk=(1,))
    assert head.transformer.attn_impl == 'factored'


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
