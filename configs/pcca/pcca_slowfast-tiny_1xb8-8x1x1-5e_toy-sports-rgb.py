# Tiny PCCA for the CPU demo and tests on the generated toy-sports data.
_base_ = [
    '../_base_/models/slowfast-tiny_pcca_toy-sports.py',
    '../_base_/datasets/toy-sports_rgb.py',
    '../_base_/schedules/sgd-nesterov_warmup1e-step-3_5e_toy-sports.py',
    '../_base_/default_runtime.py',
]

model = dict(
    roi_head=dict(
        num_classes={{_base_.num_classes}}, bbox_head=dict(num_classes={{_base_.num_classes}})
    )
)

default_hooks = dict(logger=dict(interval=10), checkpoint=dict(max_keep_ckpts=1))
