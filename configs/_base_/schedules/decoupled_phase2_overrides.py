# The values of decoupled phase 2 (paper section 2.3; ./decoupled_phase2.py has the design
# and assigns them to the Runner's keys) under names of their own. A phase-2 config whose
# other base is its own phase-1 config (so that the phase-1 data and pipelines, 360x640
# scale, train + val, are inherited, not copied) uses this file, because mmengine forbids
# the same key in two bases, and assigns the values itself
# (tests/test_models/test_configs.py checks that the result equals ./decoupled_phase2.py):
#   _base_ = ['./<phase-1 config>.py', '../_base_/schedules/decoupled_phase2_overrides.py']
#   model = dict(init_cfg=None)  # every weight comes from load_from
#   train_dataloader = dict(sampler={{_base_.phase2_sampler}})
#   custom_hooks = {{_base_.phase2_custom_hooks}}
#   model_wrapper_cfg = {{_base_.phase2_model_wrapper_cfg}}
#   train_cfg = {{_base_.phase2_train_cfg}}
#   optim_wrapper = {{_base_.phase2_optim_wrapper}}
#   param_scheduler = {{_base_.phase2_param_scheduler}}
#   load_from = 'work_dirs/<phase-1 run>/epoch_<N>.pth'  # required
# The validation settings (val_begin, val_interval) stay those of the phase-1 config.
phase2_classifier_path = 'roi_head.bbox_head.fc_cls'  # mmaction2's BBoxHeadAVA classifier
phase2_epochs = 2
phase2_lr = 0.01

# num_samples=None: as many draws per epoch as key frames in the training set.
phase2_sampler = dict(_delete_=True, type='ClassBalancedSampler', num_samples=None)
phase2_custom_hooks = [
    dict(type='FreezeAllButClassifierHook', classifier_path=phase2_classifier_path)
]
# The hook freezes after the Runner wrapped the model in DDP (see ./decoupled_phase2.py).
phase2_model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
phase2_train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=phase2_epochs)
phase2_optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=phase2_lr, momentum=0.9, weight_decay=1e-4, nesterov=True),
    clip_grad=dict(max_norm=5, norm_type=2),
)
phase2_param_scheduler = [
    dict(
        type='CosineAnnealingLR',
        T_max=phase2_epochs,
        eta_min=0,
        by_epoch=True,
        begin=0,
        end=phase2_epochs,
    )
]
