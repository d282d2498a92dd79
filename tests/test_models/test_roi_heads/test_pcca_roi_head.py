"""PCCARoIHead / PCCABBoxHead inside mmaction2's FastRCNN (tiny SlowFast, CPU)."""

import math

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi

from pcca_plugin.models import PCCABBoxHead, check_config_consistency
from pcca_plugin.testing.models import (
    CLIP_SHAPE,
    build_model,
    clips,
    make_sample,
    preprocess,
    two_samples,
)

IMG_H, IMG_W = CLIP_SHAPE[2:]


def test_gradient_reaches_backbone_context_and_classifier(tiny_model):
    data = preprocess(tiny_model, two_samples())
    losses = tiny_model(**data, mode='loss')
    losses['loss_action_cls'].backward()
    head = tiny_model.roi_head.bbox_head
    grads = {
        'backbone slow conv1': tiny_model.backbone.slow_path.conv1.conv.weight.grad,
        'backbone fast conv1': tiny_model.backbone.fast_path.conv1.conv.weight.grad,
        'context projection': head.transformer.context_proj.weight.grad,
        'attention (last layer)': head.transformer.layers[-1].attn.in_proj_weight.grad,
        'classifier': head.fc_cls.weight.grad,
    }
    for name, grad in grads.items():
        assert grad is not None and grad.abs().sum() > 0, f'no gradient reaches the {name}'


def test_gradient_flows_through_extractor_to_context_cells(tiny_model):
    """Cell (y=0, x=1) is read by the 2x context box only; cell (3, 5) by nothing."""
    slow = torch.randn(1, 64, 2, 4, 6, requires_grad=True)
    fast = torch.randn(1, 8, 8, 4, 6, requires_grad=True)
    rois = torch.tensor([[0, 40.0, 24.0, 56.0, 40.0]])  # feature x 2..3, y 1..2
    out = tiny_model.roi_head._bbox_forward((slow, fast), rois, [dict(img_shape=(IMG_H, IMG_W))])
    out['cls_score'].sum().backward()
    grad = slow.grad.abs().sum(dim=(0, 1, 2))  # (H, W)
    assert grad[0, 1] > 0, grad
    assert grad[3, 5] == 0, grad
    assert fast.grad.abs().sum() > 0


# Seeded regression: tiny SlowFast + PCCA head, seed 0, the clips and boxes of
# two_samples(). Update the constants only for an intended change of numerics.
EXPECTED_LOSS = 0.820553
EXPECTED_LOGIT_SUM = -4.903626


def test_seeded_loss_regression():
    model = build_model(seed=0)
    torch.manual_seed(0)
    data = preprocess(model, two_samples())
    rois = bbox2roi([s.proposals.bboxes.clone() for s in data['data_samples']])
    loss = float(model(**data, mode='loss')['loss_action_cls'])
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(data['inputs'])
        logits = model.roi_head._bbox_forward(
            feats, rois, [s.metainfo for s in data['data_samples']]
        )['cls_score']
    logit_sum = float(logits.sum())
    assert math.isclose(loss, EXPECTED_LOSS, rel_tol=1e-4) and math.isclose(
        logit_sum, EXPECTED_LOGIT_SUM, rel_tol=1e-4, abs_tol=1e-4
    ), (
        f'seeded loss regression changed: loss_action_cls={loss:.6f} (expected '
        f'{EXPECTED_LOSS}), eval logit sum={logit_sum:.6f} (expected {EXPECTED_LOGIT_SUM}); '
        'if the change is intended, update EXPECTED_LOSS / EXPECTED_LOGIT_SUM'
    )


def test_batched_and_one_by_one_predictions_agree(tiny_model):
    tiny_model.eval()
    samples = two_samples()
    data = preprocess(tiny_model, samples, training=False)
    with torch.no_grad():
        feats = tiny_model.extract_feat(data['inputs'])
        batched = tiny_model.roi_head.predict_bbox(
            feats,
            [s.metainfo for s in data['data_samples']],
            [s.proposals for s in data['data_samples']],
            None,
        )
        for index, sample in enumerate(samples):
            single = tiny_model(data['inputs'][index : index + 1], [sample], mode='predict')[0]
            pred = single.pred_instances
            torch.testing.assert_close(pred.scores, batched[index].scores, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(pred.bboxes, batched[index].bboxes)
            # stock predict output: normalised boxes and one sigmoid score per class
            assert pred.scores.shape == (len(sample.proposals), 66)
            assert (pred.scores > 0).all() and (pred.scores < 1).all()
            assert pred.bboxes.max() <= 1.0


@pytest.mark.parametrize('gt_boxes,gt_classes', [([[4, 6, 30, 60]], [[2]]), ([], [])])
def test_empty_proposals_in_one_batch_element(tiny_model, gt_boxes, gt_classes):
    samples = [make_sample([], gt_boxes, gt_classes), two_samples()[1]]
    data = preprocess(tiny_model, samples)
    losses = tiny_model(**data, mode='loss')
    assert torch.isfinite(losses['loss_action_cls']) and losses['loss_action_cls'] > 0
    losses['loss_action_cls'].backward()
    tiny_model.eval()
    data = preprocess(tiny_model, [make_sample([])], training=False)
    with torch.no_grad():
        pred = tiny_model(**data, mode='predict')[0].pred_instances
    assert pred.scores.shape == (0, 66) and pred.bboxes.shape == (0, 4)


def test_batch_without_any_label_gives_zero_loss_not_nan(tiny_model):
    samples = [make_sample([[4, 6, 30, 60]]), make_sample([])]
    data = preprocess(tiny_model, samples)
    losses = tiny_model(**data, mode='loss')
    assert losses['loss_action_cls'].item() == 0.0
    losses['loss_action_cls'].backward()
    assert tiny_model.roi_head.bbox_head.fc_cls.weight.grad is not None


def test_nan_proposal_is_an_error_not_a_nan_loss(tiny_model):
    samples = two_samples()
    samples[1].proposals.bboxes[1, 2] = float('nan')
    data = preprocess(tiny_model, samples)
    with pytest.raises(ValueError, match="proposal 1 of clip 'clip,0001'.*NaN/Inf"):
        tiny_model(**data, mode='loss')
    tiny_model.eval()
    with pytest.raises(ValueError, match='NaN/Inf'):
        tiny_model(data['inputs'][1:], samples[1:], mode='predict')


def box_iou(box, boxes):
    """IoU of one ``(4,)`` box with ``(n, 4)`` boxes (continuous pixel coordinates)."""
    x1 = torch.maximum(boxes[:, 0], box[0])
    y1 = torch.maximum(boxes[:, 1], box[1])
    x2 = torch.minimum(boxes[:, 2], box[2])
    y2 = torch.minimum(boxes[:, 3], box[3])
    inter = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / (area + areas - inter)


def test_softmax_option_uses_stock_cross_entropy():
    """With ``multilabel=False`` the loss is the softmax cross-entropy of the positive RoIs.

    The expected value is computed here from the logits the head produced and
    from the sampled RoIs: positives are the RoIs whose IoU with the ground
    truth reaches the assigner's ``pos_iou_thr``; each contributes
    ``-log softmax(logits)[gt class]``.
    """
    gt_box, gt_class = [4.0, 6.0, 30.0, 60.0], 3
    model = build_model(bbox_head=dict(multilabel=False))
    head = model.roi_head.bbox_head
    assert isinstance(head, PCCABBoxHead) and not head.multilabel
    # the gt box, one far from it (a negative), and the gt added by the sampler
    samples = [make_sample([gt_box, [50, 10, 80, 62]], [gt_box], [[gt_class]])]
    data = preprocess(model, samples)
    seen = {}
    hooks = [
        model.roi_head.bbox_roi_extractor.register_forward_hook(
            lambda module, inputs, output: seen.update(rois=inputs[1].detach().clone())
        ),
        head.register_forward_hook(
            lambda module, inputs, output: seen.update(logits=output.detach().clone())
        ),
    ]
    loss = model(**data, mode='loss')['loss_action_cls']
    for hook in hooks:
        hook.remove()
    pos_iou_thr = model.roi_head.train_cfg.assigner.pos_iou_thr
    positive = box_iou(torch.tensor(gt_box), seen['rois'][:, 1:]) >= pos_iou_thr
    assert 0 < positive.sum() < len(positive)  # positives and a negative were sampled
    log_probs = torch.log_softmax(seen['logits'][positive].double(), dim=1)
    expected = -log_probs[:, gt_class].mean()
    torch.testing.assert_close(loss.double(), expected, rtol=1e-6, atol=1e-7)
    # it is not the multi-label loss: per-class BCE of the same logits differs
    targets = torch.zeros_like(seen['logits'][positive])
    targets[:, gt_class] = 1
    bce = torch.nn.functional.binary_cross_entropy_with_logits(seen['logits'][positive], targets)
    assert not torch.isclose(loss, bce, rtol=1e-3)


def roi_head_cfg(**changes):
    cfg = dict(
        type='PCCARoIHead',
        bbox_roi_extractor=dict(type='ContextRoIExtractor', in_channels=16, context_output_size=3),
        bbox_head=dict(
            type='PCCABBoxHead',
            in_channels=16,
            num_classes=5,
            embed_dims=8,
            num_layers=1,
            num_heads=2,
            context_size=3,
            topk=(1,),
        ),
        train_cfg=None,
        test_cfg=None,
    )
    for key, value in changes.items():
        if isinstance(value, dict) and key in cfg:
            cfg[key].update(value)
        else:
            cfg[key] = value
    return cfg


@pytest.mark.parametrize(
    'changes,pattern',
    [
        (dict(bbox_head=dict(in_channels=24)), 'in_channels=16.*in_channels=24'),
        (dict(num_classes=7), 'num_classes=7.*num_classes=5'),
        (dict(bbox_head=dict(context_size=5)), r'\(3, 3\).*\(5, 5\)'),
        (dict(shared_head=dict(type='ACRNHead', in_channels=32, out_channels=16)), 'shared_head'),
        (
            dict(
                bbox_roi_extractor=dict(
                    type='SingleRoIExtractor3D', in_channels=None, context_output_size=None
                )
            ),
            'ContextRoIExtractor',
        ),
    ],
)
def test_inconsistent_parts_fail_at_construction(changes, pattern):
    cfg = roi_head_cfg(**changes)
    if cfg['bbox_roi_extractor']['type'] == 'SingleRoIExtractor3D':
        cfg['bbox_roi_extractor'] = dict(type='SingleRoIExtractor3D')
    with pytest.raises(ValueError, match=pattern):
        MODELS.build(cfg)


def test_extractor_inherits_head_channels():
    cfg = roi_head_cfg(bbox_roi_extractor=dict(in_channels=None))
    head = MODELS.build(cfg)
    assert head.bbox_roi_extractor.in_channels == 16
    with pytest.raises(ValueError, match='12 channels.*in_channels=16'):
        head._bbox_forward(
            torch.randn(1, 12, 2, 3, 3),
            torch.tensor([[0, 1.0, 1, 20, 20]]),
            [dict(img_shape=(48, 48))],
        )


def test_config_check_finds_dataset_class_mismatch():
    cfg = dict(
        model=dict(roi_head=roi_head_cfg()),
        train_dataloader=dict(
            dataset=dict(
                type='ConcatDataset',
                datasets=[
                    dict(type='AVADataset', num_classes=5),
                    dict(type='AVADataset', num_classes=6),
                ],
            )
        ),
    )
    with pytest.raises(ValueError, match=r'datasets\[1\]\.num_classes=6.*num_classes=5'):
        check_config_consistency(cfg)
    cfg['train_dataloader']['dataset']['datasets'][1]['num_classes'] = 5
    check_config_consistency(cfg)


def test_same_loss_and_gradients_with_every_context_path():
    """The detector's loss and backbone gradients: per clip == per person == mmcv's RoIAlign."""
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
