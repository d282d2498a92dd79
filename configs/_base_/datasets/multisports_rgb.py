# MultiSports v1.0 read from the videos with decord (see docs/data.md for the preparation).
# For raw frames: use_frames=True, data_prefix=dict(img='data/multisports/rawframes') and
# RawFrameDecode in place of DecordInit + DecordDecode. Without decord: OpenCVDecodeClip.
dataset_type = 'MultiSportsDataset'
data_root = 'data/multisports/trainval'
anno_root = 'data/multisports/annotations'
gt_file = f'{anno_root}/multisports_GT.pkl'
ann_file_train = f'{anno_root}/multisports_train.pkl'
ann_file_val = f'{anno_root}/multisports_val.pkl'
proposal_file_train = f'{anno_root}/multisports_dense_proposals_train.pkl'
proposal_file_val = f'{anno_root}/multisports_dense_proposals_val.pkl'
# The challenge test split (no GT), from prepare_multisports.py --split test (docs/submission.md).
test_split_root = 'data/multisports/test'
ann_file_test = f'{anno_root}/multisports_test.pkl'
proposal_file_test = f'{anno_root}/multisports_dense_proposals_test.pkl'
num_classes = 66

# Paper section 3.1: SlowFast T x tau = 8 x 8, alpha = 4 -> 32 frames at interval 2;
# short side 256 (the 256 x 455 scale); person detections with score >= 0.6.
clip_len = 32
frame_interval = 2
short_side = 256
person_det_score_thr = 0.6
meta_keys = ('img_shape', 'ori_shape', 'img_key', 'video_id', 'timestamp', 'proposal_scores')

train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleAVAFrames', clip_len=clip_len, frame_interval=frame_interval),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, short_side)),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackActionInputs', meta_keys=meta_keys),
]
val_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleAVAFrames', clip_len=clip_len, frame_interval=frame_interval, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, short_side)),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackActionInputs', meta_keys=meta_keys),
]

train_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_train,
        proposal_file=proposal_file_train,
        pipeline=train_pipeline,
        data_prefix=dict(img=data_root),
        use_frames=False,
        person_det_score_thr=person_det_score_thr,
        num_classes=num_classes,
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_val,
        proposal_file=proposal_file_val,
        pipeline=val_pipeline,
        data_prefix=dict(img=data_root),
        use_frames=False,
        person_det_score_thr=person_det_score_thr,
        num_classes=num_classes,
        test_mode=True,
    ),
)
test_dataloader = val_dataloader
# tools/test.py --test-split puts this dataset into test_dataloader (every frame a key frame).
test_split_dataset = dict(
    val_dataloader['dataset'],
    ann_file=ann_file_test,
    proposal_file=proposal_file_test,
    data_prefix=dict(img=test_split_root),
)

val_evaluator = dict(type='MultiSportsTubeMetric', gt_file=gt_file)
test_evaluator = val_evaluator
