"""tools/deployment/benchmark_onnx.py --quick: both backends timed at both MultiSports scales."""

import re

from pcca_plugin.deployment.verify import SCORE_ATOL
from pcca_plugin.testing import run_tool

ROW = re.compile(
    r'^\| (\d+) x (\d+) \| 8 \| 8 \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.e+-]+) \|$', re.M
)


def test_quick_benchmark_prints_both_backends_at_both_scales():
    result = run_tool('deployment/benchmark_onnx.py', '--quick', '--threads', '1')
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'random weights, 1 CPU threads, medians of 1 runs' in result.stdout
    assert '| PyTorch eager s/clip | onnxruntime s/clip | PyTorch / onnxruntime |' in result.stdout
    rows = ROW.findall(result.stdout)
    assert [(int(h), int(w)) for h, w, *_ in rows] == [(256, 455), (360, 640)]
    for *_, torch_s, onnx_s, ratio, diff in rows:
        assert float(torch_s) > 0 and float(onnx_s) > 0
        assert abs(float(ratio) - float(torch_s) / float(onnx_s)) < 0.01 + 0.01 * float(ratio)
        assert float(diff) <= SCORE_ATOL
