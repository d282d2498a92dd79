# How the toy-sports demo trains its heads, shared by the linear and the PCCA toy configs.
# Variables only (no `model`), so that the file combines with any model, dataset and
# schedule base. docs/results.md, "Development runs", has the runs behind each choice.
#
# * A pretrained, frozen backbone. The paper's backbone is Kinetics-600 pretrained; on
#   the toy there is nothing to download, so the tiny SlowFast is pretrained by clip
#   classification on videos of its own (configs/pcca/clip-classifier_slowfast-tiny_*.py)
#   and then kept fixed (FreezeModulesHook) while a RoI head learns. Trained from scratch
#   together with the head instead, the tiny backbone learns to carry the context into the
#   person's own features (its receptive field covers the whole 2x box), whichever head it
#   feeds, and the two heads tie; a fixed backbone compares the heads on the same features.
# * Feature stride 8 (res4 and res5 at spatial stride 1; res5 keeps its dilation 2): a
#   28 px tall player spans 3.5 feature cells, and its 2x box 7, instead of under 2 and 3.5
#   at stride 16, so that the context tokens and the person's RoI cover different cells.
# * Negative RoIs (pcca_plugin/models/bbox_heads/negative_roi_loss.py): proposals with IoU
#   < neg_iou_thr with every labelled box (idle players, players outside their tubes, false
#   detections) learn "no class".
toy_spatial_strides = (1, 2, 1, 1)
toy_backbone = dict(
    slow_pathway=dict(spatial_strides=toy_spatial_strides),
    fast_pathway=dict(spatial_strides=toy_spatial_strides),
)
toy_featmap_stride = 8
neg_iou_thr = 0.5
neg_loss_weight = 1.0
# The backbone weights of the pretraining run (tools/run_demo.py writes one per seed with
# pcca_plugin.models.extract_submodule_weights; set model.init_cfg.checkpoint to use another).
pretrained_backbone = (
    'work_dirs/clip-classifier_slowfast-tiny_1xb8-8x1x1-5e_toy-sports-clips-rgb/backbone.pth'
)
frozen_backbone_hooks = [dict(type='FreezeModulesHook', modules=['backbone'])]
# The hook freezes after the Runner wrapped the model in DDP (see decoupled_phase2.py).
frozen_backbone_wrapper = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
