# Tiny linear baseline on toy-sports (same backbone, data and schedule as the
# tiny PCCA config).
_base_ = ['./pcca_slowfast-tiny_1xb8-8x1x1-5e_toy-sports-rgb.py']

model = dict(
    roi_head=dict(
        _delete_=True,
        type='AVARoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor3D',
            roi_layer_type='RoIAlign',
            featmap_stride=16,
            output_size=7,
            with_temporal_pool=True,
        ),
        bbox_head=dict(
            type='BBoxHeadAVA',
            in_channels=72,
            num_classes={{_base_.num_classes}},
            background_class=False,
            multilabel=True,
            dropout_ratio=0.2,
            topk=(1,),
        ),
    )
)
