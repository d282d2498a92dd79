"""tools/demo/demo_video.py --onnx: onnxruntime in place of the PyTorch detector, same tubes."""

import json

import numpy as np
import pytest
from mmengine.config import Config

from pcca_plugin.deployment.runtime import OnnxDemoBackend
from pcca_plugin.deployment.verify import SCORE_ATOL
from pcca_plugin.testing import run_tool
from pcca_plugin.testing.deployment import TINY_PCCA, TOY_INPUT_SIZE, write_demo_video
from pcca_plugin.utils.pickle_io import dump_pickle
from pcca_plugin.visualization.video_demo import demo_video_file

NUM_FRAMES = 14
#: Tube options that keep every linked tube of the short video.
TUBE_OPTIONS = dict(len_thr=5, tube_score_thr=0.0)
#: The JSON rounds box scores to 4 decimals: one unit of rounding on top of the tolerance.
BOX_SCORE_ATOL = SCORE_ATOL + 1e-4


@pytest.fixture(scope='module')
def demo_input(tmp_path_factory):
    folder = tmp_path_factory.mktemp('demo')
    video = str(folder / 'players.mp4')
    boxes = write_demo_video(video, NUM_FRAMES, *TOY_INPUT_SIZE)
    dump_pickle(boxes, str(folder / 'proposals.pkl'))
    return folder, video, str(folder / 'proposals.pkl')


def test_onnx_demo_writes_the_tubes_of_the_pytorch_demo(demo_input, exported_pcca, tiny_checkpoint):
    folder, video, proposals = demo_input
    torch_json = folder / 'torch.json'
    demo_video_file(
        video, TINY_PCCA, tiny_checkpoint, proposal_file=proposals, json_out=str(torch_json),
        progress=False, **TUBE_OPTIONS,
    )  # fmt: skip
    onnx_json, out = folder / 'onnx.json', folder / 'onnx.mp4'
    result = run_tool(
        'demo/demo_video.py', video, TINY_PCCA, 'none', '--proposals', proposals,
        '--out', str(out), '--json', str(onnx_json), '--onnx', exported_pcca['onnx'],
        '--len-thr', '5', '--tube-score-thr', '0', '--no-progress',
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert f'players.mp4: {NUM_FRAMES} frames 192x96' in result.stdout and out.stat().st_size
    expected = json.loads(torch_json.read_text())['tubes']
    got = json.loads(onnx_json.read_text())['tubes']
    assert expected, 'two players in every frame should give tubes'
    assert [(t['label'], t['frames'], t['boxes']) for t in got] == [
        (t['label'], t['frames'], t['boxes']) for t in expected
    ]
    for tube, reference in zip(got, expected):
        assert tube['score'] == pytest.approx(reference['score'], abs=SCORE_ATOL)
        gaps = np.abs(np.subtract(tube['box_scores'], reference['box_scores']))
        assert gaps.max() <= BOX_SCORE_ATOL


def test_onnx_demo_at_another_input_size_names_the_expected_clip(demo_input, exported_pcca):
    folder, video, proposals = demo_input
    result = run_tool(
        'demo/demo_video.py', video, TINY_PCCA, 'none', '--proposals', proposals,
        '--out', str(folder / 'small.mp4'), '--onnx', exported_pcca['onnx'], '--short-side', '64',
        '--no-progress',
    )  # fmt: skip
    assert result.returncode == 1 and 'Traceback' not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith('demo_video.py: error: clip: expected a float32 array of shape')
    assert '(1, 3, 8, 96, 192)' in line and 'got ndarray of shape (1, 3, 8, 64, 128)' in line


def test_onnx_demo_refuses_a_file_of_another_class_count(exported_pcca):
    cfg = Config.fromfile(TINY_PCCA)
    cfg.model.roi_head.bbox_head.num_classes = 5
    with pytest.raises(ValueError, match=r'scores 7 classes but the config has 5'):
        OnnxDemoBackend(exported_pcca['onnx'], cfg)
