# PCCA, SlowFast-R101 8x8 (Kinetics-600 pretrained), MultiSports at 256x455,
# 8 GPUs x 4 clips = 32 (paper, Table 1 row "PCCA 256x455").
_base_ = [
    '../_base_/models/slowfast-r101_pcca.py',
    '../_base_/datasets/multisports_rgb.py',
    '../_base_/schedules/sgd-nesterov_warmup3e-step-5-8-10_12e.py',
    '../_base_/default_runtime.py',
]

# Placeholder: a SlowFast-R101 8x8 Kinetics-600 *recognizer* checkpoint in
# mmaction2's key layout (`backbone.*`; the classifier keys are ignored). No
# such checkpoint is published by mmaction2; convert one (e.g. from
# PySlowFast) and put it here, or pass
# `--cfg-options model.init_cfg.checkpoint=PATH`; `model.init_cfg=None` trains
# from scratch.
k600_checkpoint = 'checkpoints/slowfast-r101_8x8x1_kinetics600-rgb.pth'

model = dict(
    init_cfg=dict(type='Pretrained', checkpoint=k600_checkpoint),
    roi_head=dict(
        num_classes={{_base_.num_classes}}, bbox_head=dict(num_classes={{_base_.num_classes}})
    ),
)

train_dataloader = dict(batch_size=4)
