# PCCA trained on train + val for the test-server submission: 15 epochs
# (section 3.1); no validation during training (val is in the training set).
_base_ = [
    '../_base_/models/slowfast-r101_pcca.py',
    '../_base_/datasets/multisports_rgb.py',
    '../_base_/schedules/sgd-nesterov_warmup3e-step-5-8-10_15e.py',
    '../_base_/default_runtime.py',
]

k600_checkpoint = 'checkpoints/slowfast-r101_8x8x1_kinetics600-rgb.pth'  # placeholder

model = dict(
    init_cfg=dict(type='Pretrained', checkpoint=k600_checkpoint),
    roi_head=dict(
        num_classes={{_base_.num_classes}}, bbox_head=dict(num_classes={{_base_.num_classes}})
    ),
)

train_val_dataset = dict(
    type='ConcatDataset',
    datasets=[
        {{_base_.train_dataloader.dataset}},
        dict(
            type={{_base_.dataset_type}},
            ann_file={{_base_.ann_file_val}},
            proposal_file={{_base_.proposal_file_val}},
            pipeline={{_base_.train_pipeline}},
            data_prefix=dict(img={{_base_.data_root}}),
            use_frames=False,
            person_det_score_thr={{_base_.person_det_score_thr}},
            num_classes={{_base_.num_classes}},
        ),
    ],
)
train_dataloader = dict(batch_size=4, dataset=dict(_delete_=True, **train_val_dataset))
train_cfg = dict(val_interval=1000)  # effectively no validation
