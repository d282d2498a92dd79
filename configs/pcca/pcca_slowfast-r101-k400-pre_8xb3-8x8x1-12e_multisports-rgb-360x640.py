# PCCA at the larger scale (Table 1 row "PCCA 360x640"): short side 360,
# 8 GPUs x 3 clips = 24 (section 3.1), lr 0.1 for that batch; the Kinetics-400 start and
# everything else of the 256x455 config.
_base_ = ['./pcca_slowfast-r101-k400-pre_8xb4-8x8x1-12e_multisports-rgb-256x455.py']

short_side = 360
train_pipeline = [
    dict(type='DecordInit'),
    dict(
        type='SampleAVAFrames',
        clip_len={{_base_.clip_len}},
        frame_interval={{_base_.frame_interval}},
    ),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, short_side)),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackActionInputs', meta_keys={{_base_.meta_keys}}),
]
val_pipeline = [
    dict(type='DecordInit'),
    dict(
        type='SampleAVAFrames',
        clip_len={{_base_.clip_len}},
        frame_interval={{_base_.frame_interval}},
        test_mode=True,
    ),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, short_side)),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackActionInputs', meta_keys={{_base_.meta_keys}}),
]
train_dataloader = dict(batch_size=3, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader

auto_scale_lr = dict(base_batch_size=24)
