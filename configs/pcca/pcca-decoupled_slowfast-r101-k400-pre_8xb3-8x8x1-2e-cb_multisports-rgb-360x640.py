# Decoupled phase 2 (section 2.3) of the 360x640 model: from its phase-1 checkpoint, the
# classifier alone is re-trained with class-balanced sampling for 2 epochs, at the
# 360x640 scale and batch of phase 1
# (pcca_slowfast-r101-k400-pre_8xb3-8x8x1-12e_multisports-rgb-360x640.py).
_base_ = [
    './pcca_slowfast-r101-k400-pre_8xb3-8x8x1-12e_multisports-rgb-360x640.py',
    '../_base_/schedules/decoupled_phase2_overrides.py',
]

model = dict(init_cfg=None)  # every weight comes from load_from
train_dataloader = dict(sampler={{_base_.phase2_sampler}})
custom_hooks = {{_base_.phase2_custom_hooks}}
model_wrapper_cfg = {{_base_.phase2_model_wrapper_cfg}}
train_cfg = {{_base_.phase2_train_cfg}}
optim_wrapper = {{_base_.phase2_optim_wrapper}}
param_scheduler = {{_base_.phase2_param_scheduler}}

# Required: the phase-1 checkpoint.
load_from = (
    'work_dirs/pcca_slowfast-r101-k400-pre_8xb3-8x8x1-12e_multisports-rgb-360x640/epoch_12.pth'
)
