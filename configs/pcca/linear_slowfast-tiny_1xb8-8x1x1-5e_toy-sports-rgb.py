# Tiny linear baseline on toy-sports: the same pretrained frozen backbone, feature stride,
# data, schedule and RoIs (negative RoIs included) as the tiny PCCA config
# (../_base_/toy-sports_protocol.py), with the linear head (mmaction2's BBoxHeadAVA plus the
# negative-RoI loss; classifier dropout 0.2 like the PCCA toy head).
# Needs the pretrained backbone first: see configs/pcca/README.md (toy-sports).
_base_ = [
    '../_base_/models/slowfast-tiny_linear.py',
    '../_base_/datasets/toy-sports_rgb.py',
    '../_base_/schedules/sgd-nesterov_warmup1e-step-3_5e_toy-sports.py',
    '../_base_/default_runtime.py',
    '../_base_/toy-sports_protocol.py',
]

model = dict(
    init_cfg=dict(type='Pretrained', checkpoint={{_base_.pretrained_backbone}}),
    backbone={{_base_.toy_backbone}},
    roi_head=dict(
        bbox_roi_extractor=dict(featmap_stride={{_base_.toy_featmap_stride}}),
        bbox_head=dict(
            type='LinearBBoxHead',
            num_classes={{_base_.num_classes}},
            dropout_ratio=0.2,
            neg_loss_weight={{_base_.neg_loss_weight}},
        ),
    ),
    train_cfg=dict(rcnn=dict(assigner=dict(neg_iou_thr={{_base_.neg_iou_thr}}))),
)
custom_hooks = {{_base_.frozen_backbone_hooks}}
model_wrapper_cfg = {{_base_.frozen_backbone_wrapper}}

default_hooks = dict(logger=dict(interval=10), checkpoint=dict(max_keep_ckpts=1))
