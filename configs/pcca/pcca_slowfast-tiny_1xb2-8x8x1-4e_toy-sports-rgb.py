# Tiny PCCA for the CPU demo and tests on the generated toy-sports data.
_base_ = [
    '../_base_/models/slowfast-tiny_pcca.py',
    '../_base_/datasets/toy-sports_rgb.py',
    '../_base_/schedules/sgd-nesterov_warmup3e-step-5-8-10_12e.py',
    '../_base_/default_runtime.py',
]

model = dict(
    roi_head=dict(
        num_classes={{_base_.num_classes}}, bbox_head=dict(num_classes={{_base_.num_classes}})
    )
)

train_dataloader = dict(batch_size=2)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader

# A short version of the paper's schedule: 1 warm-up epoch, x0.1 at epoch 3.
max_epochs = 4
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
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[3], gamma=0.1),
]
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(max_keep_ckpts=1))
