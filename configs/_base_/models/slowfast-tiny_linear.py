# Tiny linear baseline (same tiny SlowFast as slowfast-tiny_pcca.py).
_base_ = ['./slowfast-tiny_pcca.py']

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
            num_classes=66,
            background_class=False,
            multilabel=True,
            dropout_ratio=0.5,
            topk=(1,),
        ),
    )
)
