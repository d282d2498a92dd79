# Section 3.1, training on train + val: the same schedule stopped at epoch 15
# (the paper names no other change, so the lr steps stay at 5, 8, 10).
_base_ = ['./sgd-nesterov_warmup3e-step-5-8-10_12e.py']

max_epochs = 15
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.001,
        by_epoch=True,
        begin=0,
        end=3,
        convert_to_iter_based=True,
    ),
    dict(
        type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[5, 8, 10], gamma=0.1
    ),
]
