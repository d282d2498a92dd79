# Test-time augmentation for MultiSports (`python tools/test.py CONFIG CKPT --tta`):
# every clip at short sides 256 and 360 (256x455 and 360x640 for the 16:9 videos), each
# with and without horizontal flip; the per-class scores of each proposal are averaged
# over the 4 views (pcca_plugin.models.tta.SpatioTemporalTTAModel).
tta_scales = (256, 360)
tta_model = dict(type='SpatioTemporalTTAModel', scales=tta_scales, flip=True)

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
    dict(type='DecordInit'),
    dict(type='SampleAVAFrames', clip_len=32, frame_interval=2, test_mode=True),
    dict(type='DecordDecode'),
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
