# PCCA head on a SlowOnly-R50 (single pathway, 2048 channels): the head is
# backbone-agnostic; only in_channels changes.
_base_ = ['./slowfast-r101_pcca.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmaction.ResNet3dSlowOnly',
        depth=50,
        pretrained=None,
        pretrained2d=False,
        lateral=False,
        num_stages=4,
        conv1_kernel=(1, 7, 7),
        conv1_stride_t=1,
        pool1_stride_t=1,
        spatial_strides=(1, 2, 2, 1),
        dilations=(1, 1, 1, 2),
    ),
    roi_head=dict(bbox_roi_extractor=dict(in_channels=2048), bbox_head=dict(in_channels=2048)),
)
