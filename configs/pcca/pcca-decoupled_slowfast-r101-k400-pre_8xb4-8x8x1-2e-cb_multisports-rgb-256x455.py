# Decoupled training, phase 2 (section 2.3, Table 1 row "PCCA decoupled"):
# start from the phase-1 PCCA checkpoint, freeze all but the classifier
# (roi_head.bbox_head.fc_cls), re-train it with class-balanced sampling.
# Same model and data bases as phase 1
# (pcca_slowfast-r101-k400-pre_8xb4-8x8x1-12e_multisports-rgb-256x455.py);
# the phase-2 schedule replaces the phase-1 one (mmengine forbids the same key
# in two bases, so this config cannot list both the phase-1 config and the
# phase-2 schedule as bases).
_base_ = [
    '../_base_/models/slowfast-r101_pcca.py',
    '../_base_/datasets/multisports_rgb.py',
    '../_base_/schedules/decoupled_phase2.py',
    '../_base_/default_runtime.py',
]

model = dict(
    roi_head=dict(
        num_classes={{_base_.num_classes}}, bbox_head=dict(num_classes={{_base_.num_classes}})
    )
)
train_dataloader = dict(batch_size=4, sampler={{_base_.phase2_sampler}})

# Required: the phase-1 checkpoint.
load_from = (
    'work_dirs/pcca_slowfast-r101-k400-pre_8xb4-8x8x1-12e_multisports-rgb-256x455/epoch_12.pth'
)
