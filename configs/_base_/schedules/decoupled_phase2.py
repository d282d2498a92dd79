# Phase 2 of decoupled training (paper section 2.3; Kang et al., ICLR 2020): start from the
# phase-1 checkpoint, freeze everything but the final classifier (frozen modules in eval
# mode) and re-train the classifier with class-balanced sampling. The values live in
# ./decoupled_phase2_overrides.py (under phase2_* names, for phase-2 configs whose other base
# is their phase-1 config); this file assigns them to the Runner's keys.
#
# Use it in place of the phase-1 schedule among the bases of a phase-2 config:
#   _base_ = ['<model>.py', '../_base_/datasets/toy-sports_rgb.py',
#             '../_base_/schedules/decoupled_phase2.py', '../_base_/default_runtime.py']
#   train_dataloader = dict(sampler={{_base_.phase2_sampler}})
#   load_from = 'work_dirs/<phase-1 run>/epoch_<N>.pth'   # required
_base_ = ['./decoupled_phase2_overrides.py']

# The hook freezes after the Runner wrapped the model in DDP, which then must not wait for
# the frozen parameters' gradients (tools/train.py sets this by itself too).
custom_hooks = {{_base_.phase2_custom_hooks}}
model_wrapper_cfg = {{_base_.phase2_model_wrapper_cfg}}

train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs={{_base_.phase2_epochs}}, val_begin=1, val_interval=1
)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = {{_base_.phase2_optim_wrapper}}
param_scheduler = {{_base_.phase2_param_scheduler}}
