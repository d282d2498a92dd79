# PCCA, SlowFast-R101 8x8, MultiSports at 256x455, 8 GPUs x 4 clips = 32 (paper, Table 1
# row "PCCA 256x455"). The backbone starts from mmaction2's Kinetics-400 SlowFast-R101
# 8x8 recognizer, which mmengine downloads (../_base_/pretrained/kinetics400_mmaction2.py);
# loading is checked key by key. The paper's Kinetics-600 start is
# pcca_slowfast-r101-k600-pre_8xb4-8x8x1-12e_multisports-rgb-256x455.py (converted weights).
# Another file: --cfg-options model.init_cfg.checkpoint=PATH; from scratch: model.init_cfg=None.
_base_ = [
    '../_base_/models/slowfast-r101_pcca.py',
    '../_base_/datasets/multisports_rgb.py',
    '../_base_/schedules/sgd-nesterov_warmup3e-step-5-8-10_12e.py',
    '../_base_/default_runtime.py',
    '../_base_/pretrained/kinetics400_mmaction2.py',
]

model = dict(
    init_cfg={{_base_.slowfast_r101_k400_init_cfg}},
    roi_head=dict(
        num_classes={{_base_.num_classes}}, bbox_head=dict(num_classes={{_base_.num_classes}})
    ),
)

train_dataloader = dict(batch_size=4)
