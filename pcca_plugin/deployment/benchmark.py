"""onnxruntime against PyTorch eager: seconds per clip of the action detector on the CPU.

Shape shorthand: ``T`` frames, ``H x W`` the clip's input size, ``N`` boxes.

For every input size the config's detector (random weights: the time does
not depend on them) is exported once (:func:`~.export.export_onnx`), then one
clip with ``N`` boxes is scored ``repeats`` times by each backend after
``warmup`` runs: PyTorch eager as the demo and the test loop run it
(``extract_feat`` + ``roi_head.predict`` under ``no_grad``,
:func:`~.verify.torch_scores`) and the ONNX file in onnxruntime
(:class:`~.runtime.OnnxActionDetector`), both with the same number of CPU
threads. The medians and their ratio are reported side by side; every row
also records the largest score difference of its last run.
"""

import os
import os.path as osp
import statistics
import time
from dataclasses import dataclass
from functools import partial
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .export import ExportableDetector, build_detector, clip_shape_from_config, export_onnx
from .runtime import OnnxActionDetector
from .verify import check_boxes, torch_scores

#: Persons per clip of a timing: about a MultiSports frame's players in view.
DEFAULT_NUM_BOXES = 8
#: Timed and untimed runs of each backend per input size.
DEFAULT_REPEATS, DEFAULT_WARMUP = 5, 1


@dataclass
class BenchmarkRow:
    """Median seconds per clip of each backend at one input size."""

    input_size: Tuple[int, int]
    num_frames: int
    num_boxes: int
    torch_s: float
    onnx_s: float
    max_abs_diff: float

    @property
    def speedup(self) -> float:
        """PyTorch time over onnxruntime time (> 1: onnxruntime is faster)."""
        return self.torch_s / self.onnx_s


def median_seconds(run: Callable[[], object], repeats: int, warmup: int) -> float:
    """Median wall-clock seconds of ``repeats`` calls of ``run`` after ``warmup`` calls."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def benchmark_onnx(
    config: str,
    input_sizes: Sequence[Tuple[int, int]],
    work_dir: str,
    num_boxes: int = DEFAULT_NUM_BOXES,
    repeats: int = DEFAULT_REPEATS,
    warmup: int = DEFAULT_WARMUP,
    threads: Optional[int] = None,
    seed: int = 0,
) -> List[BenchmarkRow]:
    """Time both backends on ``config``'s detector at every input size.

    Args:
        config (str): the config file.
        input_sizes (Sequence[tuple[int, int]]): ``(H, W)`` of each timing.
        work_dir (str): where the exported files are written.
        num_boxes (int): ``N`` per clip.
        repeats, warmup (int): timed and untimed runs per backend.
        threads (int, optional): CPU threads of both (default: every core).
        seed (int): seeds the clip and the boxes.

    Returns:
        list[BenchmarkRow]: one per input size, in order.
    """
    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    model, cfg = build_detector(config, None)
    rows = []
    for height, width in input_sizes:
        shape = clip_shape_from_config(cfg, (height, width))
        path = osp.join(work_dir, f'{osp.splitext(osp.basename(config))[0]}_{height}x{width}.onnx')
        export_onnx(ExportableDetector(model), path, shape)
        runtime = OnnxActionDetector(path, threads=threads)
        clip = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
        boxes = check_boxes(height, width, num_boxes, seed)
        run_torch = partial(torch_scores, model, clip, boxes)  # (N, K)
        run_onnx = partial(runtime.scores, clip.numpy(), boxes.numpy())  # (N, K)
        torch_s = median_seconds(run_torch, repeats, warmup)
        onnx_s = median_seconds(run_onnx, repeats, warmup)
        diff = float(np.abs(run_onnx() - run_torch().numpy()).max())
        rows.append(BenchmarkRow((height, width), shape[2], num_boxes, torch_s, onnx_s, diff))
    return rows


def format_rows(rows: Sequence[BenchmarkRow]) -> str:
    """The rows as a Markdown table (seconds per clip, medians)."""
    lines = [
        '| input (H x W) | frames | boxes | PyTorch eager s/clip | onnxruntime s/clip | '
        'PyTorch / onnxruntime | max abs score diff |',
        '| --- | --- | --- | --- | --- | --- | --- |',
    ]
    for row in rows:
        lines.append(
            f'| {row.input_size[0]} x {row.input_size[1]} | {row.num_frames} | {row.num_boxes} '
            f'| {row.torch_s:.3f} | {row.onnx_s:.3f} | {row.speedup:.2f} | '
            f'{row.max_abs_diff:.1e} |'
        )
    return '\n'.join(lines)


__all__ = ['BenchmarkRow', 'benchmark_onnx', 'format_rows', 'median_seconds']
