"""Reducing a multi-class detector to person; detectors without a person class."""

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import DefaultScope

from pcca_plugin.proposals.detector import (
    NoPersonClassError,
    PersonDetector,
    slice_person_checkpoint,
)
from pcca_plugin.testing import run_tool
from pcca_plugin.testing.inference import R18_PERSON_CONFIG


def _random_checkpoint(path, classes):
    """An R-18 Faster R-CNN with ``len(classes)`` classes, random weights, classes in its meta."""
    cfg = Config.fromfile(R18_PERSON_CONFIG)
    cfg.model.roi_head.bbox_head.num_classes = len(classes)
    with DefaultScope.overwrite_default_scope('mmdet'):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model).eval()
    torch.save(
        {'meta': {'dataset_meta': {'classes': tuple(classes)}}, 'state_dict': model.state_dict()},
        path,
    )
    return cfg, model


def test_checkpoint_without_person_class_is_refused(tmp_path):
    path = str(tmp_path / 'ball_detector.pth')
    _random_checkpoint(path, ('ball',))
    with pytest.raises(NoPersonClassError, match="ball_detector.pth: the detector has no 'person'"):
        PersonDetector(R18_PERSON_CONFIG, path)
    with pytest.raises(NoPersonClassError, match='ball_detector.pth'):
        slice_person_checkpoint(path, str(tmp_path / 'never.pth'))
    assert not (tmp_path / 'never.pth').exists()


def test_multiclass_checkpoint_sliced_to_person(tmp_path):
    """A 3-class head reduced to person keeps exactly the person/background logits."""
    src = str(tmp_path / 'three_classes.pth')
    cfg, multi = _random_checkpoint(src, ('ball', 'person', 'referee'))

    # The multi-class checkpoint itself runs with a test-time person filter...
    three_cfg = str(tmp_path / 'three_classes_config.py')
    cfg.dump(three_cfg)
    filtered = PersonDetector(three_cfg, src)
    assert filtered.person_index == 1
    frame = np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    (rows,) = filtered.detect([frame])
    assert rows.dtype == np.float32 and rows.shape[1] == 5

    # ...or, sliced, with the single-class config.
    dst = str(tmp_path / 'person.pth')
    result = run_tool('det/person_checkpoint.py', src, dst)
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'kept class 1 (person) of' in result.stdout
    person = PersonDetector(R18_PERSON_CONFIG, dst)
    assert person.classes == ('person',) and person.person_index == 0
    features = torch.randn(5, multi.roi_head.bbox_head.fc_cls.in_features)  # (RoIs, fc dims)
    with torch.no_grad():
        logits_multi = multi.roi_head.bbox_head.fc_cls(features)
        deltas_multi = multi.roi_head.bbox_head.fc_reg(features)
        logits_person = person.model.roi_head.bbox_head.fc_cls(features)
        deltas_person = person.model.roi_head.bbox_head.fc_reg(features)
    torch.testing.assert_close(logits_person, logits_multi[:, [1, 3]])
    torch.testing.assert_close(deltas_person, deltas_multi[:, 4:8])
    # Every other weight is unchanged.
    sliced = person.model.state_dict()
    for key, value in multi.state_dict().items():
        if 'fc_cls' not in key and 'fc_reg' not in key:
            torch.testing.assert_close(sliced[key], value)
    with pytest.raises(NoPersonClassError, match='three_classes.pth'):
        slice_person_checkpoint(src, str(tmp_path / 'x.pth'), classes=('a', 'b', 'c'))
    # Loading the multi-class checkpoint into the single-class config is refused.
    with pytest.raises(RuntimeError, match='three_classes.pth does not fit'):
        PersonDetector(R18_PERSON_CONFIG, src)
