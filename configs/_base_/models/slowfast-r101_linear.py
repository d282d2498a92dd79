# The paper's "Linear" baseline (Table 1): SlowFast-R101 8x8, 7x7 RoIAlign,
# temporal average + 7x7 spatial max pooling, one linear classifier. Built from
# mmaction2's stock SingleRoIExtractor3D / BBoxHeadAVA with the same backbone.
_base_ = ['./slowfast-r101_pcca.py']

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
            in_channels=2304,
            num_classes=66,
            background_class=False,
            multilabel=True,
            temporal_pool_type='avg',
            spatial_pool_type='max',
            dropout_ratio=0.5,
            topk=(3, 5),
        ),
    )
)
