"""The cost of a RoI head's forward: counted multiply-adds and saved activations by stage."""

from functools import partial

import pytest
import torch

from pcca_plugin.models.roi_heads import inference_macs, training_forward_cost
from pcca_plugin.testing.models import CLIP_SHAPE, build_model

IMG_H, IMG_W = CLIP_SHAPE[2:]


def head_and_inputs(attn_impl, num_persons=3):
    roi_head = build_model(bbox_head=dict(attn_impl=attn_impl)).roi_head
    generator = torch.Generator().manual_seed(0)
    feat = (
        torch.randn(1, 64, 2, 4, 6, generator=generator).requires_grad_(),
        torch.randn(1, 8, 8, 4, 6, generator=generator).requires_grad_(),
    )
    boxes = torch.tensor([[4.0, 6.0, 30.0, 60.0], [50.0, 10.0, 80.0, 62.0], [0, 0, 10, 12]])
    rois = torch.cat([torch.zeros(num_persons, 1), boxes[:num_persons]], dim=1)
    metas = [dict(img_shape=(IMG_H, IMG_W))]
    return roi_head, feat, partial(roi_head._bbox_forward, feat, rois, metas)


@pytest.mark.parametrize('attn_impl', ['factored', 'standard'])
def test_counted_macs_are_the_transformer_and_classifier_products(attn_impl):
    roi_head, feat, forward = head_and_inputs(attn_impl)
    head = roi_head.bbox_head
    tokens = roi_head.bbox_roi_extractor.num_context_tokens
    classifier = head.fc_cls.in_features * head.fc_cls.out_features
    positions = 4 * 6
    for macs, with_grad in (
        (training_forward_cost(roi_head, forward, feat).macs, True),
        (inference_macs(roi_head, forward), False),
    ):
        expected = head.transformer.count_macs(3, tokens, positions, with_grad) + 3 * classifier
        assert macs == expected


def test_the_factored_head_saves_less_than_the_standard_one():
    costs = {}
    for attn_impl in ('factored', 'standard'):
        roi_head, feat, forward = head_and_inputs(attn_impl)
        costs[attn_impl] = training_forward_cost(roi_head, forward, feat)
    factored, standard = costs['factored'], costs['standard']
    assert 0 < factored.head_saved_bytes < standard.head_saved_bytes
    assert factored.head_saved_bytes <= factored.saved_bytes < standard.saved_bytes
