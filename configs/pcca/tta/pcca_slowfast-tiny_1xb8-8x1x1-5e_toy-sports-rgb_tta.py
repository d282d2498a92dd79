# The tiny toy-sports PCCA tested with TTA (`python tools/test.py THIS_CONFIG CKPT --tta`):
# short sides 64 and 96 (the toy frames are 96x192), with and without flip. A flip turns
# 'run left' (0) into 'run right' (1), so their scores swap in the flipped views.
_base_ = ['../pcca_slowfast-tiny_1xb8-8x1x1-5e_toy-sports-rgb.py']

tta_scales = (64, 96)
tta_model = dict(
    type='SpatioTemporalTTAModel', scales=tta_scales, flip=True, flip_label_map={0: 1, 1: 0}
)
# No tta_pipeline here: `tools/test.py --tta` derives it from this config's test pipeline
# (pcca_plugin.models.tta.build_tta_pipeline), so it always samples the same clip.
