# Section 3.1 of Ning et al. (2021): SGD, initial lr 0.1 for a mini-batch of
# 32 clips, Nesterov momentum 0.9, weight decay 1e-4, linear warm-up during the
# first 3 epochs, lr x0.1 at epochs 5, 8 and 10, stop after epoch 12.
# The lr follows the real batch size (world_size x samples_per_gpu) linearly
# through auto_scale_lr; configs with another paper batch (24 at 360x640)
# change base_batch_size.
base_lr = 0.1
paper_batch_size = 32
max_epochs = 12
warmup_epochs = 3
lr_milestones = [5, 8, 10]
lr_decay = 0.1
# The paper does not give the warm-up start; SlowFast's AVA recipe starts at
# ~1/1000 of the base lr.
warmup_start_factor = 0.001

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_begin=1, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=base_lr, momentum=0.9, nesterov=True, weight_decay=1e-4),
)

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
        gamma=lr_decay,
    ),
]

auto_scale_lr = dict(enable=True, base_batch_size=paper_batch_size)
