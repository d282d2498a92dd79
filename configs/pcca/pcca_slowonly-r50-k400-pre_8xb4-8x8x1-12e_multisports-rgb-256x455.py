# PCCA head on SlowOnly-R50 8x8 (8 frames at interval 8; res5 stride 1,
# dilation 2; 2048 channels): the head is reusable with another backbone.
_base_ = [
    '../_base_/models/slowonly-r50_pcca.py',
    '../_base_/datasets/multisports_rgb.py',
    '../_base_/schedules/sgd-nesterov_warmup3e-step-5-8-10_12e.py',
    '../_base_/default_runtime.py',
    '../_base_/pretrained/kinetics400_mmaction2.py',
]

model = dict(
    # mmaction2's Kinetics-400 SlowOnly-R50 8x8 recognizer, downloaded and checked.
    init_cfg={{_base_.slowonly_r50_k400_init_cfg}},
    roi_head=dict(
        num_classes={{_base_.num_classes}}, bbox_head=dict(num_classes={{_base_.num_classes}})
    ),
)

clip_len = 8
frame_interval = 8
train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleAVAFrames', clip_len=clip_len, frame_interval=frame_interval),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, {{_base_.short_side}})),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackActionInputs', meta_keys={{_base_.meta_keys}}),
]
val_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleAVAFrames', clip_len=clip_len, frame_interval=frame_interval, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, {{_base_.short_side}})),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackActionInputs', meta_keys={{_base_.meta_keys}}),
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
