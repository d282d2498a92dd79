# PCCA trained on train + val for the test-server submission: 15 epochs
# (section 3.1); no validation during training (val is in the training set). Starts from
# mmaction2's Kinetics-400 SlowFast-R101 8x8 recognizer, as the train-only config does
# (../_base_/pretrained/kinetics400_mmaction2.py); another file:
# --cfg-options model.init_cfg.checkpoint=PATH.
_base_ = [
    '../_base_/models/slowfast-r101_pcca.py',
    '../_base_/datasets/multisports_rgb.py',
    '../_base_/schedules/sgd-nesterov_warmup3e-step-5-8-10_15e.py',
    '../_base_/default_runtime.py',
    '../_base_/pretrained/kinetics400_mmaction2.py',
]

model = dict(
    init_cfg={{_base_.slowfast_r101_k400_init_cfg}},
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
            key_frames='annotated',  # val's annotated key frames, the train split's rule
        ),
    ],
)
train_dataloader = dict(batch_size=4, dataset=dict(_delete_=True, **train_val_dataset))
train_cfg = dict(val_interval=1000)  # effectively no validation
