# Decoupled phase 2 (section 2.3) of the train + val model submitted to the test server:
# from its phase-1 checkpoint, the classifier alone is re-trained with class-balanced
# sampling over train + val for 2 epochs, with the phase-1 data and no validation
# (pcca_slowfast-r101-k400-pre_8xb4-8x8x1-train+val-15e_multisports-rgb-256x455.py).
_base_ = [
    './pcca_slowfast-r101-k400-pre_8xb4-8x8x1-train+val-15e_multisports-rgb-256x455.py',
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
    'work_dirs/pcca_slowfast-r101-k400-pre_8xb4-8x8x1-train+val-15e_multisports-rgb-256x455/'
    'epoch_15.pth'
)
