# The paper's linear baseline (Table 1 row "Linear"): same backbone, Kinetics-400 start,
# data and schedule as the PCCA config
# (pcca_slowfast-r101-k400-pre_8xb4-8x8x1-12e_multisports-rgb-256x455.py);
# 7x7 RoIAlign + max-pool + one linear layer.
_base_ = [
    '../_base_/models/slowfast-r101_linear.py',
    '../_base_/datasets/multisports_rgb.py',
    '../_base_/schedules/sgd-nesterov_warmup3e-step-5-8-10_12e.py',
    '../_base_/default_runtime.py',
    '../_base_/pretrained/kinetics400_mmaction2.py',
]

model = dict(
    init_cfg={{_base_.slowfast_r101_k400_init_cfg}},
    roi_head=dict(bbox_head=dict(num_classes={{_base_.num_classes}})),
)

train_dataloader = dict(batch_size=4)
