# Decoupled phase 2 for the tiny toy-sports model (see the MultiSports
# decoupled config for the design).
_base_ = [
    '../_base_/models/slowfast-tiny_pcca_toy-sports.py',
    '../_base_/datasets/toy-sports_rgb.py',
    '../_base_/schedules/decoupled_phase2.py',
    '../_base_/default_runtime.py',
]

model = dict(
    roi_head=dict(
        num_classes={{_base_.num_classes}}, bbox_head=dict(num_classes={{_base_.num_classes}})
    )
)
train_dataloader = dict(sampler={{_base_.phase2_sampler}})

# Required: the phase-1 checkpoint.
load_from = 'work_dirs/pcca_slowfast-tiny_1xb8-8x1x1-5e_toy-sports-rgb/epoch_5.pth'
