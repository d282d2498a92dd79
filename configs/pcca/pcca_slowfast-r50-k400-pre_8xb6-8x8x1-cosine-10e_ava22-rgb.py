# PCCA head on AVA v2.2: mmaction2's stock SlowFast-R50 8x8 AVA config (data,
# schedule, backbone) with the RoI head swapped; 81 classes with the
# background class 0 as in mmaction2's AVA heads. The backbone starts from mmaction2's
# current Kinetics-400 SlowFast-R50 8x8 recognizer (the stock config names an older
# v0.x file), loaded with the key-by-key check.
_base_ = [
    'mmaction::detection/slowfast/'
    'slowfast_kinetics400-pretrained-r50_8xb6-8x8x1-cosine-10e_ava22-rgb.py',
    '../_base_/pretrained/kinetics400_mmaction2.py',
]

custom_imports = dict(imports=['pcca_plugin'], allow_failed_imports=False)

model = dict(
    init_cfg={{_base_.slowfast_r50_k400_init_cfg}},
    roi_head=dict(
        _delete_=True,
        type='PCCARoIHead',
        bbox_roi_extractor=dict(
            type='ContextRoIExtractor',
            featmap_stride=16,
            person_output_size=7,
            context_output_size=9,
            context_scale=2.0,
            in_channels=2304,
        ),
        bbox_head=dict(
            type='PCCABBoxHead',
            in_channels=2304,
            num_classes=81,
            background_class=True,
            multilabel=True,
            context_size=9,
            dropout_ratio=0.5,
        ),
    ),
)
