# The paper's optimiser (section 3.1: SGD, Nesterov momentum 0.9, weight decay 1e-4, linear
# warm-up, x0.1 steps) on a CPU budget for the toy-sports demo: tiny models trained from
# scratch, 8 clips a batch, a fixed lr (no auto-scaling from the paper's batch of 32), one
# warm-up epoch, x0.1 after epoch 3, stop after epoch 5.
_base_ = ['./sgd-nesterov_warmup3e-step-5-8-10_12e.py']

base_lr = 0.05
max_epochs = 5
warmup_epochs = 1
warmup_start_factor = 0.01
lr_milestones = [3]

auto_scale_lr = dict(enable=False)
optim_wrapper = dict(optimizer=dict(lr=base_lr))
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=warmup_start_factor,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
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
