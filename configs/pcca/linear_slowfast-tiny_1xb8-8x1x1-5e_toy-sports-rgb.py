# Tiny linear baseline on toy-sports: the same backbone, data, schedule and RoIs (negative
# RoIs included) as the tiny PCCA config, with the linear head (mmaction2's BBoxHeadAVA
# plus the negative-RoI loss; classifier dropout 0.2 like the PCCA toy head).
_base_ = [
    '../_base_/models/slowfast-tiny_linear.py',
    '../_base_/datasets/toy-sports_rgb.py',
    '../_base_/schedules/sgd-nesterov_warmup1e-step-3_5e_toy-sports.py',
    '../_base_/default_runtime.py',
]

# The negative-RoI settings of configs/_base_/models/slowfast-tiny_pcca_toy-sports.py.
neg_iou_thr = 0.5
neg_loss_weight = 1.0

model = dict(
    roi_head=dict(
        bbox_head=dict(
            type='LinearBBoxHead',
            num_classes={{_base_.num_classes}},
            dropout_ratio=0.2,
            neg_loss_weight=neg_loss_weight,
        )
    ),
    train_cfg=dict(rcnn=dict(assigner=dict(neg_iou_thr=neg_iou_thr))),
)

default_hooks = dict(logger=dict(interval=10), checkpoint=dict(max_keep_ckpts=1))
