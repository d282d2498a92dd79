# The paper's linear baseline (Table 1 row "Linear"): same backbone, data and
# schedule as the PCCA config; 7x7 RoIAlign + max-pool + one linear layer.
_base_ = [
    '../_base_/models/slowfast-r101_linear.py',
    '../_base_/datasets/multisports_rgb.py',
    '../_base_/schedules/sgd-nesterov_warmup3e-step-5-8-10_12e.py',
    '../_base_/default_runtime.py',
]

# Placeholder, see the PCCA config.
k600_checkpoint = 'checkpoints/slowfast-r101_8x8x1_kinetics600-rgb.pth'

model = dict(
    init_cfg=dict(type='Pretrained', checkpoint=k600_checkpoint),
    roi_head=dict(bbox_head=dict(num_classes={{_base_.num_classes}})),
)

train_dataloader = dict(batch_size=4)
