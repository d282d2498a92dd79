# Tiny PCCA for the CPU demo and tests on the generated toy-sports data: the pretrained
# tiny SlowFast kept frozen, features at stride 8 (../_base_/toy-sports_protocol.py).
# Needs the pretrained backbone first: see configs/pcca/README.md (toy-sports).
_base_ = [
    '../_base_/models/slowfast-tiny_pcca_toy-sports.py',
    '../_base_/datasets/toy-sports_rgb.py',
    '../_base_/schedules/sgd-nesterov_warmup1e-step-3_5e_toy-sports.py',
    '../_base_/default_runtime.py',
]

model = dict(
    init_cfg=dict(type='Pretrained', checkpoint={{_base_.pretrained_backbone}}),
    roi_head=dict(
        num_classes={{_base_.num_classes}}, bbox_head=dict(num_classes={{_base_.num_classes}})
    ),
)
custom_hooks = {{_base_.frozen_backbone_hooks}}
model_wrapper_cfg = {{_base_.frozen_backbone_wrapper}}

default_hooks = dict(logger=dict(interval=10), checkpoint=dict(max_keep_ckpts=1))
