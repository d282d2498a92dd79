# A small person Faster R-CNN (ResNet-18-FPN, 64 FPN channels, 128 px input)
# for CPU tests and the toy-sports demo: same code paths as the X101 person
# detector, random initialisation (nothing is downloaded), 4 iterations.
# Data: tools/data/make_toy_sports.py + tools/data/multisports/to_coco.py.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

metainfo = dict(classes=('person',), palette=[(220, 20, 60)])
data_root = 'data/toy_sports/'
train_ann_file = 'annotations/toy_sports_person_train.json'
val_ann_file = 'annotations/toy_sports_person_val.json'
frame_prefix = 'rawframes/'
input_scale = (128, 128)
fpn_channels = 64
fc_channels = 128
# Toy players are about 9 x 19 px at this input scale: anchors of 4 x stride
# (16 px on the stride-4 level) give them positive anchors; mmdet's default 8
# (32 px) does not.
anchor_scale = 4
# A toy frame holds a handful of players: 100 RPN proposals per frame at test
# time (mmdet: 1000) keep CPU inference fast.
rpn_test_candidates = 300
rpn_test_proposals = 100
max_iters = 4
base_lr = 0.01

model = dict(
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=fpn_channels),
    rpn_head=dict(
        in_channels=fpn_channels,
        feat_channels=fpn_channels,
        anchor_generator=dict(scales=[anchor_scale]),
    ),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=fpn_channels),
        bbox_head=dict(in_channels=fpn_channels, fc_out_channels=fc_channels, num_classes=1),
    ),
    test_cfg=dict(rpn=dict(nms_pre=rpn_test_candidates, max_per_img=rpn_test_proposals)),
)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=input_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=input_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'),
    ),
]

train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file=train_ann_file,
        data_prefix=dict(img=frame_prefix),
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file=val_ann_file,
        data_prefix=dict(img=frame_prefix),
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + val_ann_file)
test_evaluator = val_evaluator

train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters
)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2)]
optim_wrapper = dict(optimizer=dict(lr=base_lr))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters),
    visualization=dict(type='DetVisualizationHook', draw=False),
)
log_processor = dict(by_epoch=False)
