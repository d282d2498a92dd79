"""Test-time augmentation: flip round trip, mean of views, bad settings, Runner with --tta."""

import copy

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import DefaultScope

from pcca_plugin.apis import run_test
from pcca_plugin.models.tta import (
    SpatioTemporalTTAModel,
    apply_tta,
    build_tta_pipeline,
    unflip_boxes,
)
from pcca_plugin.testing.inference import TINY_PCCA, TINY_PCCA_TTA, build_tiny_detector
from pcca_plugin.utils.pickle_io import load_pickle

#: A 16-frame 64x128 clip (the tiny SlowFast needs a multiple of 4 frames).
CLIP_LEN, HEIGHT, WIDTH = 16, 64, 128
SCALES = (48, 64)
NUM_CLASSES = 7
#: 'run left' (0) and 'run right' (1) swap under a flip.
FLIP_LABEL_MAP = {0: 1, 1: 0}
META_KEYS = ('img_shape', 'img_key', 'video_id', 'timestamp', 'flip', 'flip_direction')
#: Asymmetric person boxes (pixels of the 64x128 clip), so that a flip moves them.
PROPOSALS = np.array([[4.0, 6.0, 30.0, 60.0], [70.0, 10.0, 90.0, 50.0]], dtype=np.float32)


def tta_pipeline(scales=SCALES):
    return Compose(
        [
            dict(
                type='TestTimeAug',
                transforms=[
                    [dict(type='Resize', scale=(-1, s)) for s in scales],
                    [dict(type='Flip', flip_ratio=0.0), dict(type='Flip', flip_ratio=1.0)],
                    [dict(type='FormatShape', input_format='NCTHW', collapse=True)],
                    [dict(type='PackActionInputs', meta_keys=META_KEYS)],
                ],
            )
        ]
    )


def clip_results(seed=0):
    rng = np.random.default_rng(seed)
    imgs = [rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8) for _ in range(CLIP_LEN)]
    return dict(
        imgs=imgs,
        img_shape=(HEIGHT, WIDTH),
        original_shape=(HEIGHT, WIDTH),
        modality='RGB',
        num_clips=1,
        clip_len=CLIP_LEN,
        proposals=PROPOSALS.copy(),
        gt_bboxes=np.zeros((0, 4), np.float32),
        gt_labels=np.zeros((0, NUM_CLASSES), np.float32),
        img_key='v,0001',
        video_id='v',
        timestamp=1,
    )


def views_batch(scales=SCALES):
    with DefaultScope.overwrite_default_scope('mmaction'):
        packed = tta_pipeline(scales)(clip_results())
    return pseudo_collate([packed])


def test_flip_round_trip_and_mean_of_views():
    detector = build_tiny_detector()
    tta = SpatioTemporalTTAModel(
        module=detector, scales=SCALES, flip=True, flip_label_map=FLIP_LABEL_MAP
    )
    batch = views_batch()
    reference_batch = copy.deepcopy(batch)
    with torch.no_grad():
        merged = tta.test_step(batch)[0].pred_instances
    original = torch.from_numpy(PROPOSALS / np.array([WIDTH, HEIGHT, WIDTH, HEIGHT]))
    # Reference: every view alone through the detector, flip hidden from the head.
    view_scores, seen = [], set()
    perm = [1, 0, 2, 3, 4, 5, 6]
    for inputs, samples in zip(reference_batch['inputs'], reference_batch['data_samples']):
        sample = samples[0]
        flipped = bool(sample.metainfo['flip'])
        seen.add((min(sample.metainfo['img_shape']), flipped))
        sample.set_metainfo({'flip': False})
        with torch.no_grad():
            pred = detector.test_step(dict(inputs=list(inputs), data_samples=[sample]))[0]
        boxes, scores = pred.pred_instances.bboxes, pred.pred_instances.scores
        if flipped:
            # The flip really moved the boxes, and undoing it gives the originals back.
            assert not torch.allclose(boxes.double(), original, atol=1e-3)
            boxes = unflip_boxes(boxes)
            scores = scores[:, perm]
        torch.testing.assert_close(boxes.double(), original, atol=1e-5, rtol=0)
        view_scores.append(scores)
    assert seen == {(s, f) for s in SCALES for f in (False, True)}
    torch.testing.assert_close(merged.bboxes.double(), original, atol=1e-5, rtol=0)
    torch.testing.assert_close(merged.scores, torch.stack(view_scores).mean(0))
    # The views do disagree (otherwise the mean would prove nothing).
    assert not torch.allclose(view_scores[0], view_scores[1])


def test_view_weights_give_weighted_mean():
    detector = build_tiny_detector()
    weights = [1.0, 0.0, 0.0, 0.0]  # only the first view, (48, no flip)
    tta = SpatioTemporalTTAModel(module=detector, scales=SCALES, view_weights=weights)
    with torch.no_grad():
        merged = tta.test_step(views_batch())[0].pred_instances.scores
        batch = views_batch()
        index = [
            i
            for i, s in enumerate(batch['data_samples'])
            if min(s[0].metainfo['img_shape']) == SCALES[0] and not s[0].metainfo['flip']
        ][0]
        alone = detector.test_step(
            dict(
                inputs=list(batch['inputs'][index]), data_samples=list(batch['data_samples'][index])
            )
        )[0].pred_instances.scores
    torch.testing.assert_close(merged, alone)


def test_scales_that_do_not_match_the_pipeline_raise():
    tta = SpatioTemporalTTAModel(module=build_tiny_detector(), scales=(48, 80), flip=True)
    with pytest.raises(ValueError, match=r'tta_model expects.*\(80, False\)'), torch.no_grad():
        tta.test_step(views_batch())


def test_flip_setting_that_does_not_match_the_pipeline_raises():
    tta = SpatioTemporalTTAModel(module=build_tiny_detector(), scales=SCALES, flip=False)
    with pytest.raises(ValueError, match='flip=False'), torch.no_grad():
        tta.test_step(views_batch())


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(flip_label_map={0: 9, 9: 0}), 'names class 9, but the model scores 7'),
        (dict(flip_label_map={0: 1}), 'symmetric'),
        (dict(flip=False, flip_label_map={0: 1, 1: 0}), 'flip=False'),
        (dict(scales=(64, 64)), 'distinct positive'),
        (dict(view_weights=[1.0, 1.0]), '2 entries for 4 views'),
    ],
)
def test_settings_that_do_not_match_the_model_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SpatioTemporalTTAModel(module=build_tiny_detector(), **{'scales': SCALES, **kwargs})


def test_derived_tta_pipeline_and_apply_tta():
    cfg = Config.fromfile(TINY_PCCA)
    val_pipeline = cfg.test_dataloader.dataset.pipeline
    pipeline = build_tta_pipeline(val_pipeline, scales=(64, 96), flip=True)
    tta_step = pipeline[-1]
    assert tta_step['type'] == 'TestTimeAug'
    resizes, flips = tta_step['transforms'][:2]
    assert [r['scale'] for r in resizes] == [(-1, 64), (-1, 96)]
    assert [f['flip_ratio'] for f in flips] == [0.0, 1.0]
    pack = tta_step['transforms'][-1][0]
    assert pack['type'] == 'PackActionInputs' and 'flip' in pack['meta_keys']
    apply_tta(cfg)
    assert cfg.model.type == 'SpatioTemporalTTAModel'
    assert cfg.model.module.type == 'FastRCNN'
    assert cfg.test_dataloader.dataset.pipeline[-1]['type'] == 'TestTimeAug'


def test_runner_test_with_tta_gives_a_metric(in_toy_root, tiny_checkpoint, tmp_path):
    frames_pkl = str(tmp_path / 'frame_detections.pkl')
    metrics = run_test(
        TINY_PCCA_TTA,
        tiny_checkpoint,
        tta=True,
        work_dir=str(tmp_path / 'work'),
        dump_frame_detections=frames_pkl,
        cfg_options={'test_dataloader.dataset.frame_stride': 5},
    )
    assert 0.0 <= metrics['frame_mAP@0.5'] <= 100.0
    dets = load_pickle(frames_pkl)
    # 3 videos x 3 key frames (stride 5 over 15 frames), 7 classes per proposal.
    assert len(np.unique(dets[:, :2], axis=0)) == 9
    assert dets.shape[0] % NUM_CLASSES == 0
