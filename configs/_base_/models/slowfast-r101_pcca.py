# PCCA on SlowFast-R101 8x8 (Ning et al. 2021, sections 2.1, 2.2 and 3.1).
# SlowFast T x tau = 8 x 8, alpha = 4 (fast pathway: 32 frames), beta_inv = 8
# -> 2048 + 256 = 2304 channels. res5: spatial stride 1, dilation 2, so the
# feature map is 1/16 of the input (16x29 for 256x455).
# Only `model` is defined here (no helper variables), so that this file can be
# combined with any dataset and schedule base without duplicate keys.

model = dict(
    type='FastRCNN',
    _scope_='mmdet',
    backbone=dict(
        type='mmaction.ResNet3dSlowFast',
        pretrained=None,
        resample_rate=4,  # tau / alpha: the slow pathway keeps 8 of 32 frames
        speed_ratio=4,  # alpha
        channel_ratio=8,  # beta_inv
        slow_pathway=dict(
            type='resnet3d',
            depth=101,
            pretrained=None,
            lateral=True,
            fusion_kernel=7,
            conv1_kernel=(1, 7, 7),
            conv1_stride_t=1,
            pool1_stride_t=1,
            inflate=(0, 0, 1, 1),
            spatial_strides=(1, 2, 2, 1),  # res5 spatial stride 1 ...
            dilations=(1, 1, 1, 2),
        ),  # ... with dilation 2
        fast_pathway=dict(
            type='resnet3d',
            depth=101,
            pretrained=None,
            lateral=False,
            base_channels=8,
            conv1_kernel=(5, 7, 7),
            conv1_stride_t=1,
            pool1_stride_t=1,
            spatial_strides=(1, 2, 2, 1),
            dilations=(1, 1, 1, 2),
        ),
    ),
    roi_head=dict(
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
            num_classes=66,  # MultiSports labels (60 of them are evaluated)
            background_class=False,
            multilabel=True,  # per-class binary cross-entropy (section 3.1)
            embed_dims=1024,
            num_layers=3,
            num_heads=8,
            context_size=9,
            with_pos_encoding=False,
            transformer_dropout=0.1,
            dropout_ratio=0.5,
            topk=(3, 5),
        ),
    ),
    data_preprocessor=dict(
        type='mmaction.ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW',
    ),
    train_cfg=dict(
        rcnn=dict(
            assigner=dict(
                type='MaxIoUAssignerAVA', pos_iou_thr=0.9, neg_iou_thr=0.9, min_pos_iou=0.9
            ),
            sampler=dict(
                type='RandomSampler',
                num=32,
                pos_fraction=1,
                neg_pos_ub=-1,
                add_gt_as_proposals=True,
            ),
            pos_weight=1.0,
        )
    ),
    test_cfg=dict(rcnn=None),
)
