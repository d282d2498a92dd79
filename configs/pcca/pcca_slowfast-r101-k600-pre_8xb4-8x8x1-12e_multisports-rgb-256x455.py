# The paper's own start (section 3.1): PCCA on SlowFast-R101 8x8 pretrained on
# Kinetics-600, otherwise the config of
# pcca_slowfast-r101-k400-pre_8xb4-8x8x1-12e_multisports-rgb-256x455.py. mmaction2 publishes
# no Kinetics-600 SlowFast-R101; convert a PySlowFast or pytorchvideo checkpoint with
#   python tools/convert_slowfast_weights.py SRC \
#       checkpoints/slowfast-r101_8x8x1_kinetics600-rgb_converted.pth --format pyslowfast
# (docs/model.md, "Pretrained backbones"). `k600_checkpoint` below is that file; another:
# --cfg-options model.init_cfg.checkpoint=PATH. Loading is checked key by key.
#
# The architecture and pixel normalisation follow the checkpoint:
# * PySlowFast and pytorchvideo fuse the fast pathway into the slow one with conv + BN +
#   ReLU; mmaction2's lateral is a bare conv unless lateral_norm=True.
# * The converter prints the fusion kernel and inflated blocks of the weights; when they
#   differ from this config's (fusion_kernel=7, res4/res5 inflated), set them in
#   model.backbone (the checked loading names the keys whose shapes differ).
# * Their weights expect pixels in [0, 1] normalised with mean 0.45 and std 0.225 per
#   channel (mmaction2's own weights: ImageNet mean/std on [0, 255]); the data
#   preprocessor works on [0, 255], so both are scaled by 255.
_base_ = ['./pcca_slowfast-r101-k400-pre_8xb4-8x8x1-12e_multisports-rgb-256x455.py']

k600_checkpoint = 'checkpoints/slowfast-r101_8x8x1_kinetics600-rgb_converted.pth'

pixel_max = 255.0
converted_mean = 0.45
converted_std = 0.225
model = dict(
    init_cfg=dict(checkpoint=k600_checkpoint),
    backbone=dict(slow_pathway=dict(lateral_norm=True)),
    data_preprocessor=dict(
        mean=[converted_mean * pixel_max] * 3, std=[converted_std * pixel_max] * 3
    ),
)
