# The Kinetics-400 recognizers of mmaction2's model zoo that the MultiSports and AVA
# configs start from (URLs and top-1 from mmaction2 1.2.0's
# configs/recognition/{slowfast,slowonly}/metafile.yml). mmengine downloads a URL once
# into torch's hub cache (~/.cache/torch/hub/checkpoints); without network access,
# download it elsewhere and pass --cfg-options model.init_cfg.checkpoint=PATH.
#
# `CheckedPretrained` (pcca_plugin/models/pretrained.py) fills `backbone.` from the
# recognizer's `backbone.*`, drops its classifier `cls_head.*`, and raises an error naming
# the keys when any backbone key is missing, unexpected or of another shape (mmengine's
# `Pretrained` only logs a warning). Variables only, named per checkpoint, so that this
# file combines with any model, dataset and schedule base:
#   model = dict(init_cfg={{_base_.slowfast_r101_k400_init_cfg}})
mmaction2_zoo = 'https://download.openmmlab.com/mmaction/v1.0/recognition'
recognizer_ignore_keys = [r'^cls_head\.']

# slowfast_r101_8xb8-8x8x1-256e_kinetics400-rgb: SlowFast-R101 8x8 (alpha 4,
# beta_inv 8, fusion kernel 7), top-1 78.65.
slowfast_r101_k400_init_cfg = dict(
    type='CheckedPretrained',
    checkpoint=f'{mmaction2_zoo}/slowfast/slowfast_r101_8xb8-8x8x1-256e_kinetics400-rgb/'
    'slowfast_r101_8xb8-8x8x1-256e_kinetics400-rgb_20220901-9c0e09bd.pth',
    prefix='backbone.',
    ignore_keys=recognizer_ignore_keys,
)
# slowfast_r50_8xb8-8x8x1-256e_kinetics400-rgb: SlowFast-R50 8x8, top-1 76.80.
slowfast_r50_k400_init_cfg = dict(
    type='CheckedPretrained',
    checkpoint=f'{mmaction2_zoo}/slowfast/slowfast_r50_8xb8-8x8x1-256e_kinetics400-rgb/'
    'slowfast_r50_8xb8-8x8x1-256e_kinetics400-rgb_20220818-1cb6dfc8.pth',
    prefix='backbone.',
    ignore_keys=recognizer_ignore_keys,
)
# slowonly_imagenet-pretrained-r50_8xb16-8x8x1-steplr-150e_kinetics400-rgb: SlowOnly-R50
# 8x8 (ImageNet-initialised, then Kinetics-400), top-1 75.96.
slowonly_r50_k400_init_cfg = dict(
    type='CheckedPretrained',
    checkpoint=f'{mmaction2_zoo}/slowonly/'
    'slowonly_imagenet-pretrained-r50_8xb16-8x8x1-steplr-150e_kinetics400-rgb/'
    'slowonly_imagenet-pretrained-r50_8xb16-8x8x1-steplr-150e_kinetics400-rgb_20220901-df42dc84.pth',
    prefix='backbone.',
    ignore_keys=recognizer_ignore_keys,
)
