"""MultiSportsTubeMetric inside a real mmengine ``Runner.test()`` with a tiny model."""

import numpy as np
import pytest
import torch
from mmaction.structures import ActionDataSample
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.structures import InstanceData
from torch.utils.data import Dataset

import pcca_plugin
from pcca_plugin.testing.evaluation import METRIC_KEYS, make_metric_gt, perfect_samples


class _FrameDataset(Dataset):
    """One item per annotated frame: a dummy input and a data sample with its metainfo."""

    def __init__(self, samples):
        self.samples = samples

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        sample = self.samples[index]
        data_sample = ActionDataSample()
        data_sample.set_metainfo(dict(video_id=sample['video_id'], timestamp=sample['timestamp']))
        return dict(inputs=torch.zeros(1), data_samples=data_sample)


class _OracleModel(BaseModel):
    """Predicts, for each frame, the boxes and scores it was given (a controllable detector)."""

    def __init__(self, samples):
        super().__init__()
        self.table = {(s['video_id'], s['timestamp']): s['pred_instances'] for s in samples}
        self.dummy = torch.nn.Linear(1, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        assert mode == 'predict'
        for sample in data_samples:
            pred = self.table[(sample.video_id, sample.timestamp)]
            sample.pred_instances = InstanceData(bboxes=pred['bboxes'], scores=pred['scores'])
        return data_samples


@pytest.mark.parametrize('shuffle', [False, True])
def test_metric_in_runner_test(tmp_path, shuffle):
    pcca_plugin.register_all_modules()  # the Runner builds the metric from its registry
    gt = make_metric_gt(num_videos=4)
    samples = perfect_samples(gt)
    if shuffle:
        rng = np.random.default_rng(1)
        for sample in samples:
            sample['pred_instances']['scores'] = sample['pred_instances']['scores'][
                :, torch.as_tensor(rng.permutation(5))
            ]
    runner = Runner(
        model=_OracleModel(samples),
        work_dir=str(tmp_path),
        test_dataloader=dict(
            dataset=_FrameDataset(samples),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=3,
            num_workers=0,
            collate_fn=dict(type='pseudo_collate'),
        ),
        test_cfg=dict(type='TestLoop'),
        test_evaluator=dict(type='MultiSportsTubeMetric', gt_file=gt),
        default_scope='mmaction',
    )
    metrics = runner.test()
    for key in METRIC_KEYS:
        if shuffle:
            assert metrics[key] < 100.0
        else:
            assert metrics[key] == pytest.approx(100.0), key
