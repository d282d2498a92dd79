# The tiny toy-sports PCCA tested with TTA (`python tools/test.py THIS_CONFIG CKPT --tta`):
# short sides 64 and 96 (the toy frames are 96x192), with and without flip. A flip turns
# 'run left' (0) into 'run right' (1), so their scores swap in the flipped views.
_base_ = ['../pcca_slowfast-tiny_1xb8-8x1x1-5e_toy-sports-rgb.py']

tta_scales = (64, 96)
tta_model = dict(
    type='SpatioTemporalTTAModel', scales=tta_scales, flip=True, flip_label_map={0: 1, 1: 0}
)
_tta_meta_keys = (
    'img_shape',
    'ori_shape',
    'img_key',
    'video_id',
    'timestamp',
    'proposal_scores',
    'flip',
    'flip_direction',
)
tta_pipeline = [
    dict(type='SampleAVAFrames', clip_len=32, frame_interval=2, test_mode=True),
    dict(type='RawFrameDecode'),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='Resize', scale=(-1, scale)) for scale in tta_scales],
            [dict(type='Flip', flip_ratio=0.0), dict(type='Flip', flip_ratio=1.0)],
            [dict(type='FormatShape', input_format='NCTHW', collapse=True)],
            [dict(type='PackActionInputs', meta_keys=_tta_meta_keys)],
        ],
    ),
]
