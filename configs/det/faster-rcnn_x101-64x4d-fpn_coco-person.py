# Person detector for MultiSports proposals: Faster R-CNN ResNeXt-101-64x4d-FPN
# (the detector family of the PCCA paper, Sec. 3.1) with a single class, person.
#
# Inference from COCO: reduce mmdet's 80-class COCO checkpoint to person with
#   python tools/det/person_checkpoint.py COCO.pth \
#       checkpoints/faster-rcnn_x101-64x4d-fpn_coco-person.pth
# (keeps the person/background rows of fc_cls and the person rows of fc_reg),
# then run tools/det/generate_proposals.py with this config. See docs/detector.md.
# Alternatively run the COCO checkpoint with mmdet's own 80-class config; the
# proposal tool then keeps only the boxes labelled person.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_x101-64x4d_fpn_1x_coco.py'

# Single-class metainfo: CocoDataset then reads only the 'person' category.
metainfo = dict(classes=('person',), palette=[(220, 20, 60)])
data_root = 'data/multisports/'
# COCO-format person boxes written by tools/data/multisports/to_coco.py.
train_ann_file = 'annotations/multisports_person_train.json'
val_ann_file = 'annotations/multisports_person_val.json'
# Frames extracted as rawframes/<video_name>/img_00001.jpg.
frame_prefix = 'rawframes/'

model = dict(
    # All weights come from the checkpoint; no ImageNet download.
    backbone=dict(init_cfg=None),
    roi_head=dict(bbox_head=dict(num_classes=1)),
)

train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file=train_ann_file,
        data_prefix=dict(img=frame_prefix),
    )
)
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file=val_ann_file,
        data_prefix=dict(img=frame_prefix),
    )
)
test_dataloader = val_dataloader

val_evaluator = dict(ann_file=data_root + val_ann_file)
test_evaluator = val_evaluator
