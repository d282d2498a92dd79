# Tiny linear baseline on toy-sports: the same backbone, data and schedule as the tiny
# PCCA config, with mmaction2's linear head (classifier dropout 0.2 like the PCCA toy head).
_base_ = [
    '../_base_/models/slowfast-tiny_linear.py',
    '../_base_/datasets/toy-sports_rgb.py',
    '../_base_/schedules/sgd-nesterov_warmup1e-step-3_5e_toy-sports.py',
    '../_base_/default_runtime.py',
]

model = dict(roi_head=dict(bbox_head=dict(num_classes={{_base_.num_classes}}, dropout_ratio=0.2)))

default_hooks = dict(logger=dict(interval=10), checkpoint=dict(max_keep_ckpts=1))
