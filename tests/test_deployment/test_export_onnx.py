"""tools/deployment/export_onnx.py: onnxruntime against the PyTorch predict step, bad input."""

import re

import numpy as np
import onnx
import pytest
import torch

from pcca_plugin.deployment import require_deploy
from pcca_plugin.deployment.export import (
    ExportableDetector,
    build_detector,
    describe_onnx,
    export_onnx,
    graph_op_domains,
)
from pcca_plugin.deployment.runtime import OnnxActionDetector
from pcca_plugin.deployment.verify import SCORE_ATOL, check_boxes, verify_onnx
from pcca_plugin.testing import run_tool
from pcca_plugin.testing.deployment import (
    MAX_POOL_CONFIG,
    TINY_LINEAR,
    TINY_PCCA,
    predict_scores,
)

TOY_CLASSES = 7
CLIP_SHAPE = (1, 3, 8, 96, 192)


def test_the_tool_prints_the_interface_and_verifies(exported):
    out = exported['stdout']
    assert f'{exported["onnx"]}: onnx.checker passed' in out
    assert f'input clip: float ({", ".join(map(str, CLIP_SHAPE))})' in out
    assert 'input boxes: float (num_boxes, 4)' in out
    assert f'output scores: float (num_boxes, {TOY_CLASSES})' in out
    assert 'opset: ai.onnx 18' in out
    diffs = re.findall(r'verify N=(\d+): max \|onnx - torch\| = (\S+) \(ok\)', out)
    assert [int(n) for n, _ in diffs] == [1, 5, 17]
    assert all(float(diff) <= SCORE_ATOL for _, diff in diffs)
    onnx.checker.check_model(exported['onnx'], full_check=True)
    assert graph_op_domains(exported['onnx']) == {''}  # ai.onnx only: no mmcv custom op
    ops = {node.op_type for node in onnx.load(exported['onnx']).graph.node}
    assert 'RoiAlign' in ops


@pytest.mark.parametrize('num_boxes', [1, 5, 17, 64])
def test_onnxruntime_gives_the_predict_step_scores(exported, num_boxes):
    """The detector's own data preprocessor and predict(), boxes inside and across the border."""
    model, _ = build_detector(exported['config'], exported['checkpoint'])
    generator = torch.Generator().manual_seed(num_boxes)
    raw_clip = torch.rand(CLIP_SHAPE[1:], generator=generator) * 255  # (3, T, H, W) pixels
    boxes = check_boxes(*CLIP_SHAPE[-2:], num_boxes, seed=num_boxes)
    if num_boxes > 1:  # one box wholly outside the image and one zero-area box
        boxes[1] = torch.tensor([-60.0, -40.0, -10.0, -5.0])
    if num_boxes > 2:
        boxes[2] = torch.tensor([30.0, 40.0, 30.0, 40.0])
    clip, expected = predict_scores(model, raw_clip, boxes)
    runtime = OnnxActionDetector(exported['onnx'], num_classes=TOY_CLASSES)
    got = runtime.scores(clip.numpy(), boxes.numpy())
    assert got.shape == (num_boxes, TOY_CLASSES) and got.dtype == np.float32
    assert np.abs(got - expected.numpy()).max() <= SCORE_ATOL
    assert expected.min() >= 0 and expected.max() <= 1


def test_verify_catches_another_model(exported):
    """The check fails for weights other than the exported ones (it can fail)."""
    model, _ = build_detector(exported['config'], exported['checkpoint'])
    with torch.no_grad():
        model.roi_head.bbox_head.fc_cls.bias.add_(1.0)
    checks = verify_onnx(model, exported['onnx'], box_counts=(3,))
    assert not checks[0].passed and 'FAILED' in str(checks[0])


def test_wrong_clip_or_boxes_name_the_expected_shape(exported_pcca):
    runtime = OnnxActionDetector(exported_pcca['onnx'])
    clip = np.zeros(CLIP_SHAPE, np.float32)
    boxes = np.array([[10, 10, 50, 80]], np.float32)
    expected_clip = 'clip: expected a float32 array of shape (1, 3, 8, 96, 192)'
    for bad in (clip[:, :, :4], clip.astype(np.float64), clip[0], torch.from_numpy(clip)):
        with pytest.raises(ValueError, match=re.escape(expected_clip)):
            runtime.scores(bad, boxes)
    expected_boxes = 'boxes: expected a float32 array of shape (N, 4)'
    for bad in (boxes[:, :3], boxes.astype(np.int64), boxes[0], boxes[:0]):
        with pytest.raises(ValueError, match=re.escape(expected_boxes)):
            runtime.scores(clip, bad)


def test_a_file_for_another_number_of_classes_is_refused(exported_pcca):
    with pytest.raises(ValueError, match=r'scores 7 classes but the config has 66'):
        OnnxActionDetector(exported_pcca['onnx'], num_classes=66)


def test_an_opset_without_half_pixel_roi_align_is_one_line(tmp_path):
    result = run_tool(
        'deployment/export_onnx.py', TINY_LINEAR, 'none', '--out', str(tmp_path / 'x.onnx'),
        '--opset', '11',
    )  # fmt: skip
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith('export_onnx.py: error: opset 11 is too low')
    assert 'needs opset >= 16' in line and not (tmp_path / 'x.onnx').exists()


def test_a_head_without_export_path_names_the_module_and_the_op(tmp_path):
    config = tmp_path / 'max_pool.py'
    config.write_text(MAX_POOL_CONFIG.format(base=TINY_LINEAR))
    result = run_tool(
        'deployment/export_onnx.py', str(config), 'none', '--out',
        str(tmp_path / 'x.onnx'), '--input-size', '96', '192',
    )  # fmt: skip
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(
        'export_onnx.py: error: roi_head.bbox_roi_extractor (SingleRoIExtractor3D)'
    )
    assert "RoIAlign with pool_mode='max' has no ONNX export path" in line


def test_opset_17_is_written_by_conversion(tmp_path):
    """Below the exporter's opset 18 the graph is converted (LayerNormalization needs 17)."""
    model, _ = build_detector(TINY_PCCA, 'none')
    path = export_onnx(ExportableDetector(model), str(tmp_path / 'pcca17.onnx'), CLIP_SHAPE, 17)
    assert 'opset: ai.onnx 17' in describe_onnx(path)
    checks = verify_onnx(model, path, box_counts=(5,))
    assert checks[0].passed
    assert model.roi_head.bbox_head.transformer.attn_impl == 'factored'  # restored after export


def test_a_missing_deploy_package_says_how_to_install_it():
    with pytest.raises(ImportError, match=re.escape("pip install -e '.[deploy]' (make setup")):
        require_deploy('onnx_package_that_does_not_exist')
