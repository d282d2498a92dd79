"""The negative-RoI loss of the PCCA and linear heads: exact values, stock equivalence, errors."""

import math

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config

from pcca_plugin.models import LinearBBoxHead, PCCABBoxHead
from pcca_plugin.testing.models import (
    TINY_LINEAR,
    TINY_PCCA,
    make_sample,
    preprocess,
    two_samples,
)

#: Assigner IoU thresholds that leave a gap between positives and negatives.
ASSIGNER_WITH_NEGATIVES = dict(pos_iou_thr=0.9, neg_iou_thr=0.5, min_pos_iou=0.9)


def build(cfg_path, seed=0, neg_loss_weight=None, assigner=None, **bbox_head):
    """A tiny detector from ``cfg_path`` with bbox-head / assigner changes, seeded."""
    cfg = Config.fromfile(cfg_path)
    if neg_loss_weight is not None:
        bbox_head['neg_loss_weight'] = neg_loss_weight
        if cfg.model.roi_head.bbox_head.type == 'BBoxHeadAVA':
            bbox_head['type'] = 'LinearBBoxHead'
    cfg.merge_from_dict({f'model.roi_head.bbox_head.{k}': v for k, v in bbox_head.items()})
    if assigner:
        cfg.merge_from_dict({f'model.train_cfg.rcnn.assigner.{k}': v for k, v in assigner.items()})
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def reference_negative_loss(logits, labels, weight, alpha=1.0, gamma=0.0):
    """Slow float64 loop: weight * mean over all-zero label rows and classes of focal BCE."""
    terms = []
    for row, label in zip(logits.double().tolist(), labels.tolist()):
        if sum(label) > 0:
            continue
        for x in row:
            bce = math.log1p(math.exp(x))  # -log(1 - sigmoid(x))
            terms.append(alpha * (1 - math.exp(-bce)) ** gamma * bce)
    return weight * sum(terms) / len(terms)


@pytest.mark.parametrize('gamma,alpha', [(0.0, 1.0), (2.0, 0.25)])
def test_negative_loss_equals_the_slow_reference(gamma, alpha):
    head = LinearBBoxHead(
        in_channels=8,
        num_classes=5,
        background_class=False,
        multilabel=True,
        topk=(1,),
        neg_loss_weight=0.7,
        focal_gamma=gamma,
        focal_alpha=alpha,
    )
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 5, generator=generator) * 3
    labels = torch.zeros(6, 5)
    labels[0, 1] = labels[2, [0, 4]] = labels[4, 3] = 1.0  # rows 1, 3, 5 are negatives
    loss = head.negative_loss(logits, labels)
    expected = reference_negative_loss(logits, labels, 0.7, alpha, gamma)
    assert math.isclose(float(loss), expected, rel_tol=1e-5), (float(loss), expected)


def test_negative_loss_without_negatives_is_a_zero_that_keeps_the_graph():
    head = LinearBBoxHead(
        in_channels=8, num_classes=3, background_class=False, topk=(1,), neg_loss_weight=1.0
    )
    logits = torch.randn(2, 3, requires_grad=True)
    loss = head.negative_loss(logits, torch.eye(3)[:2])
    assert float(loss) == 0.0
    loss.backward()
    assert logits.grad is not None


@pytest.mark.parametrize('cfg_path', [TINY_LINEAR, TINY_PCCA])
def test_weight_zero_is_the_stock_loss_and_weight_one_adds_only_the_negative_term(cfg_path):
    data_seed = 0
    losses = {}
    for name, weight in (('stock', None), ('zero', 0.0), ('one', 1.0)):
        model = build(cfg_path, neg_loss_weight=weight, assigner=ASSIGNER_WITH_NEGATIVES)
        torch.manual_seed(data_seed)  # same dropout masks in every build
        losses[name] = model(**preprocess(model, two_samples()), mode='loss')
    if cfg_path == TINY_LINEAR:  # the stock config builds mmaction2's BBoxHeadAVA itself
        stock_head = build(cfg_path).roi_head.bbox_head
        assert type(stock_head).__name__ == 'BBoxHeadAVA'
    assert set(losses['zero']) == set(losses['stock'])
    for key, value in losses['stock'].items():
        assert torch.equal(losses['zero'][key], value), key
        assert torch.equal(losses['one'][key], value), key
    negative = losses['one']['loss_neg_cls']
    assert negative > 0 and torch.isfinite(negative)


def test_negative_term_trains_the_classifier_on_a_batch_without_labels():
    model = build(TINY_PCCA, neg_loss_weight=1.0, assigner=ASSIGNER_WITH_NEGATIVES)
    samples = [make_sample([[4, 6, 30, 60]]), make_sample([[40, 6, 70, 60]])]
    losses = model(**preprocess(model, samples), mode='loss')
    assert losses['loss_action_cls'].item() == 0.0
    assert losses['loss_neg_cls'] > 0
    losses['loss_neg_cls'].backward()
    head = model.roi_head.bbox_head
    assert head.fc_cls.weight.grad.abs().sum() > 0
    assert head.transformer.context_proj.weight.grad.abs().sum() > 0


def test_linear_head_is_registered_and_builds_from_a_config_dict():
    cfg = Config.fromfile(TINY_LINEAR)
    cfg.model.roi_head.bbox_head.type = 'LinearBBoxHead'
    cfg.model.roi_head.bbox_head.neg_loss_weight = 1.0
    model = MODELS.build(cfg.model)
    assert isinstance(model.roi_head.bbox_head, LinearBBoxHead)
    assert model.roi_head.bbox_head.neg_loss_weight == 1.0


def test_overlapping_assigner_thresholds_are_refused_with_the_fix():
    model = build(TINY_PCCA, neg_loss_weight=1.0)  # the AVA assigner: 0.9 / 0.9
    with pytest.raises(ValueError, match=r'neg_iou_thr=0.9 >= pos_iou_thr=0.9.*e\.g\. 0\.5'):
        model(**preprocess(model, two_samples()), mode='loss')


@pytest.mark.parametrize(
    'kwargs,pattern',
    [
        (dict(neg_loss_weight=-1.0), 'must be >= 0'),
        (dict(neg_loss_weight=1.0, multilabel=False), 'multilabel=True'),
    ],
)
def test_bad_weights_fail_at_construction(kwargs, pattern):
    for head_type in (LinearBBoxHead, PCCABBoxHead):
        with pytest.raises(ValueError, match=pattern):
            head_type(in_channels=16, num_classes=4, background_class=False, topk=(1,), **kwargs)
