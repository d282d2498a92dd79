# Fine-tune the person Faster R-CNN X101-64x4d-FPN on MultiSports person boxes
# (PCCA paper, Sec. 3.1: "We further fine-tuned the model on train set of
# MultiSports"). The paper gives no detector schedule; this one starts from the
# person-sliced COCO checkpoint (tools/det/person_checkpoint.py) with half the
# COCO learning rate for 6 epochs over the annotated frames converted by
# tools/data/multisports/to_coco.py (e.g. --frame-interval 4); data paths are
# those of the base config. See docs/detector.md.
_base_ = './faster-rcnn_x101-64x4d-fpn_coco-person.py'

max_epochs = 6
lr_steps = [4, 5]
base_lr = 0.01
warmup_iters = 500

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=warmup_iters),
    dict(
        type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=lr_steps, gamma=0.1
    ),
]
optim_wrapper = dict(optimizer=dict(lr=base_lr))
# lr above is for 8 GPUs x 2 images; --auto-scale-lr rescales it for other batch sizes.
auto_scale_lr = dict(enable=False, base_batch_size=16)

default_hooks = dict(
    checkpoint=dict(
        type='CheckpointHook',
        interval=1,
        max_keep_ckpts=2,
        save_best='coco/bbox_mAP_50',
        rule='greater',
    )
)

load_from = 'checkpoints/faster-rcnn_x101-64x4d-fpn_coco-person.pth'
