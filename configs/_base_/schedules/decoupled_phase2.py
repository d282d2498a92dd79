# Phase 2 of decoupled training (paper section 2.3; Kang et al., ICLR 2020): start from the
# phase-1 checkpoint, freeze everything but the final classifier (frozen modules in eval
# mode) and re-train the classifier with class-balanced sampling.
#
# Use it in place of the phase-1 schedule among the bases of a phase-2 config:
#   _base_ = ['<model>.py', '../_base_/datasets/toy-sports_rgb.py',
#             '../_base_/schedules/decoupled_phase2.py', '../_base_/default_runtime.py']
#   train_dataloader = dict(sampler={{_base_.phase2_sampler}})
#   load_from = 'work_dirs/<phase-1 run>/epoch_<N>.pth'   # required
classifier_path = 'roi_head.bbox_head.fc_cls'  # mmaction2's BBoxHeadAVA classifier
phase2_epochs = 2
phase2_lr = 0.01

# num_samples=None: as many draws per epoch as key frames in the training set.
phase2_sampler = dict(_delete_=True, type='ClassBalancedSampler', num_samples=None)

custom_hooks = [dict(type='FreezeAllButClassifierHook', classifier_path=classifier_path)]
# The hook freezes after the Runner wrapped the model in DDP, which then must not wait for
# the frozen parameters' gradients (tools/train.py sets this by itself too).
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=phase2_epochs, val_begin=1, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=phase2_lr, momentum=0.9, weight_decay=1e-4, nesterov=True),
    clip_grad=dict(max_norm=5, norm_type=2),
)
param_scheduler = [
    dict(
        type='CosineAnnealingLR',
        T_max=phase2_epochs,
        eta_min=0,
        by_epoch=True,
        begin=0,
        end=phase2_epochs,
    )
]
