# Generated toy-sports data (tools/data/make_toy_sports.py), read as raw frames.
# Make it with: python tools/data/make_toy_sports.py data/toy_sports
# No horizontal flip: 'run left' / 'run right' would swap labels under a flip.
dataset_type = 'MultiSportsDataset'
data_root = 'data/toy_sports'
anno_root = f'{data_root}/annotations'
gt_file = f'{data_root}/toy_sports_GT.pkl'
ann_file_train = f'{anno_root}/toy_sports_train.pkl'
ann_file_val = f'{anno_root}/toy_sports_val.pkl'
proposal_file_train = f'{anno_root}/toy_sports_dense_proposals_train.pkl'
proposal_file_val = f'{anno_root}/toy_sports_dense_proposals_val.pkl'
num_classes = 7

# The paper's clip is T x tau = 8 x 8 on the slow path with alpha = 4, i.e. 32 frames at
# interval 2 (configs/_base_/datasets/multisports_rgb.py). Toy videos have only 24 frames,
# so such a clip would span the whole video at every key frame and hide when an action
# starts and ends; the toy data uses 8 consecutive frames around the key frame (clamped at
# the video borders), which also makes CPU training 4x cheaper.
clip_len = 8
frame_interval = 1
person_det_score_thr = 0.6
# proposal_scores rides along so that the evaluator can multiply by the detector score.
meta_keys = ('img_shape', 'ori_shape', 'img_key', 'video_id', 'timestamp', 'proposal_scores')

train_pipeline = [
    dict(type='SampleAVAFrames', clip_len=clip_len, frame_interval=frame_interval),
    dict(type='RawFrameDecode'),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackActionInputs', meta_keys=meta_keys),
]
val_pipeline = [
    dict(type='SampleAVAFrames', clip_len=clip_len, frame_interval=frame_interval, test_mode=True),
    dict(type='RawFrameDecode'),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackActionInputs', meta_keys=meta_keys),
]

train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_train,
        proposal_file=proposal_file_train,
        pipeline=train_pipeline,
        data_prefix=dict(img=f'{data_root}/rawframes'),
        use_frames=True,
        person_det_score_thr=person_det_score_thr,
        num_classes=num_classes,
    ),
)
val_dataloader = dict(
    batch_size=1,  # mmaction2's AVARoIHead.predict takes one clip at a time
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_val,
        proposal_file=proposal_file_val,
        pipeline=val_pipeline,
        data_prefix=dict(img=f'{data_root}/rawframes'),
        use_frames=True,
        person_det_score_thr=person_det_score_thr,
        num_classes=num_classes,
        test_mode=True,
    ),
)
test_dataloader = val_dataloader

val_evaluator = dict(type='MultiSportsTubeMetric', gt_file=gt_file)
test_evaluator = val_evaluator
