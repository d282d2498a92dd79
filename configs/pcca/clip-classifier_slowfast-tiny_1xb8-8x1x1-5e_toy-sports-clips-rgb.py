# Pretraining of the tiny SlowFast for the toy-sports demo: clip classification on videos
# of its own, the toy's stand-in for the Kinetics-600 pretraining of the paper's backbone
# (section 3.1), which cannot be downloaded here.
#
# Each key frame is one sample with one box, the whole frame, labelled with every action
# in it (tools/data/make_toy_sports.py --clip-level); the linear head on that box
# max-pools the whole feature map, so this is a multi-label clip classifier. The backbone
# learns what happens in a clip (runs, jumps, balls), not which player does it.
# Afterwards only its `backbone.` weights are kept
# (pcca_plugin.models.extract_submodule_weights), the tiny analogue of loading a Kinetics
# recognizer into a detector. Runs at the backbone's native stride 16, as Kinetics models
# are trained; the detection configs then run res4 at stride 1 (toy-sports_protocol.py).
_base_ = [
    '../_base_/models/slowfast-tiny_linear.py',
    '../_base_/datasets/toy-sports_rgb.py',
    '../_base_/schedules/sgd-nesterov_warmup1e-step-3_5e_toy-sports.py',
    '../_base_/default_runtime.py',
]

clips_root = 'data/toy_sports/pretraining'
model = dict(
    roi_head=dict(
        bbox_head=dict(type='LinearBBoxHead', num_classes={{_base_.num_classes}}, dropout_ratio=0.2)
    )
)
train_dataloader = dict(
    dataset=dict(
        ann_file=f'{clips_root}/annotations/toy_sports_clips_train.pkl',
        proposal_file=f'{clips_root}/annotations/toy_sports_clips_dense_proposals_train.pkl',
        data_prefix=dict(img=f'{clips_root}/rawframes'),
    )
)
# Nothing to validate on: the clip classifier is a means to the detectors' backbone.
val_dataloader = val_cfg = val_evaluator = None
test_dataloader = test_cfg = test_evaluator = None

default_hooks = dict(logger=dict(interval=10), checkpoint=dict(max_keep_ckpts=1))
