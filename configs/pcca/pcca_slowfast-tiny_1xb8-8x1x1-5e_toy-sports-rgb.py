# Tiny PCCA for the CPU demo and tests on the generated toy-sports data.
_base_ = [
    '../_base_/models/slowfast-tiny_pcca_toy-sports.py',
    '../_base_/datasets/toy-sports_rgb.py',
    '../_base_/schedules/sgd-nesterov_warmup3e-step-5-8-10_12e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    roi_head=dict(
        num_classes={{_base_.num_classes}}, bbox_head=dict(num_classes={{_base_.num_classes}})
    )
)

# CPU training from scratch: 8 clips a batch, a fixed lr (no auto-scaling from the
# paper's batch of 32), one warm-up epoch, x0.1 after epoch 3, stop after epoch 5.
train_dataloader = dict(batch_size=8)
val_dataloader = dict(batch_size=1)  # mmaction2's AVARoIHead tests one clip at a time
test_dataloader = val_dataloader

base_lr = 0.05
max_epochs = 5
lr_milestones = [3]
auto_scale_lr = dict(enable=False)
optim_wrapper = dict(optimizer=dict(lr=base_lr))
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.01,
        by_epoch=True,
        begin=0,
        end=1,
        convert_to_iter_based=True,
    ),
    dict(
        type='MultiStepLR',
        by_epoch=True,
        begin=0,
        end=max_epochs,
        milestones=lr_milestones,
        gamma=0.1,
    ),
]
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(max_keep_ckpts=1))
