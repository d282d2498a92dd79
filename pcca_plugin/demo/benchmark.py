"""Throughput of the video demo (frames per second) on a generated video, CPU threads fixed.

Runs :func:`pcca_plugin.visualization.video_demo.run_video_demo` end to end
(read, score every frame's clip, link, draw and write) with random weights on
a generated 16:9 video with two moving persons in every frame, for each
config, and prints a Markdown table with the columns :data:`COLUMNS` (the
table of ``docs/inference.md``), preceded by the machine, the date and the
load (and writes it all as JSON when asked). The command line is
``tools/demo/benchmark_demo.py``.
"""

import argparse
import datetime
import json
import os
import os.path as osp
import platform
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from pcca_plugin.utils.checkout import repo_path
from pcca_plugin.visualization.video_demo import (
    DEFAULT_BATCH_SIZE,
    build_action_detector,
    clip_settings_from_config,
    run_video_demo,
)

#: Configs benchmarked by default: (config, model short side, video frames).
DEFAULT_CONFIGS = (
    'configs/pcca/pcca_slowfast-tiny_1xb8-8x1x1-5e_toy-sports-rgb.py:256:32',
    'configs/pcca/pcca_slowonly-r50-k400-pre_8xb4-8x8x1-12e_multisports-rgb-256x455.py:256:8',
)
#: ``--quick``: the tiny config on toy-sports' native frame size, 8 frames, one thread.
QUICK_CONFIGS = ('configs/pcca/pcca_slowfast-tiny_1xb8-8x1x1-5e_toy-sports-rgb.py:96:8',)
QUICK_VIDEO_SIZE = '96x192'
QUICK_THREADS = 1
#: The generated video: 360x640 (16:9, like MultiSports' 720x1280 halved) at 25 fps.
VIDEO_SIZE, VIDEO_FPS = '360x640', 25.0
#: CPU threads of torch and OpenCV unless the caller says otherwise.
DEFAULT_THREADS = 2
#: Short side and frame count of a ``--configs`` entry that gives none.
DEFAULT_SHORT_SIDE, DEFAULT_FRAMES = 256, 32
#: Columns of the printed table (``docs/inference.md`` shows the same) and the row key of each.
COLUMNS = (
    ('config', 'config'),
    ('params (M)', 'params_m'),
    ('model input', 'input'),
    ('clip (L x interval)', 'clip'),
    ('frames', 'frames'),
    ('fps (end to end)', 'fps'),
    ('fps (scoring only)', 'score_fps'),
)
#: Two persons per frame, as normalised boxes moving by this much per frame.
PERSON_BOXES = ((0.1, 0.3, 0.25, 0.9), (0.6, 0.25, 0.75, 0.85))
STEP_PER_FRAME = 0.005
PERSON_SCORE = 0.9
#: The generated frames: uniform noise in this grey range, persons drawn in this colour.
BACKGROUND_RANGE = (40, 120)
PERSON_COLOUR = (230, 230, 230)


def parse_size(text: str) -> Tuple[int, int]:
    """``'HxW'`` -> ``(height, width)``; an error naming the option otherwise.

    Raises:
        argparse.ArgumentTypeError: not two positive integers joined by ``x``
            (the type of ``--video-size``).
    """
    try:
        height, width = (int(part) for part in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'--video-size {text!r}: expected HxW, e.g. 360x640'
        ) from None
    if height <= 0 or width <= 0:
        raise argparse.ArgumentTypeError(f'--video-size {text!r}: sizes must be positive')
    return height, width


def make_video(
    path: str, num_frames: int, size: Tuple[int, int] = parse_size(VIDEO_SIZE)
) -> Dict[int, np.ndarray]:
    """Write the benchmark video; return its proposals (frame -> ``(2, 5)``).

    Args:
        path: the mp4 to write.
        num_frames: its frame count.
        size: ``(height, width)`` in pixels.
    """
    height, width = size
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), VIDEO_FPS, (width, height))
    proposals = {}
    scale = np.array([width, height, width, height])
    for t in range(num_frames):
        frame = rng.integers(*BACKGROUND_RANGE, (height, width, 3), dtype=np.uint8)
        rows = []
        for index, box in enumerate(PERSON_BOXES):
            shift = STEP_PER_FRAME * t * (1 if index == 0 else -1)
            moved = np.array(box) + np.array([shift, 0, shift, 0])
            x1, y1, x2, y2 = (moved * scale).astype(int)
            cv2.rectangle(frame, (x1, y1), (x2, y2), PERSON_COLOUR, -1)
            rows.append(list(moved) + [PERSON_SCORE])
        writer.write(frame)
        proposals[t + 1] = np.array(rows, dtype=np.float32)
    writer.release()
    return proposals


def benchmark(
    config: str,
    short_side: int,
    num_frames: int,
    work_dir: str,
    batch_size: int,
    video_size: Tuple[int, int] = parse_size(VIDEO_SIZE),
) -> Dict:
    """Run the demo once on a fresh video of ``video_size`` (H, W); return the figures."""
    height, width = video_size
    video = osp.join(work_dir, f'bench_{num_frames}_{height}x{width}.mp4')
    proposals = make_video(video, num_frames, video_size)
    model, cfg = build_action_detector(config, None)
    settings = clip_settings_from_config(cfg)
    settings.short_side = short_side
    params = sum(p.numel() for p in model.parameters())
    start = time.perf_counter()
    result = run_video_demo(
        video,
        model,
        settings,
        out=osp.join(work_dir, 'out.mp4'),
        proposals=proposals,
        batch_size=batch_size,
        progress=False,
        len_thr=1,
        tube_score_thr=0.0,
    )
    seconds = time.perf_counter() - start
    return dict(
        config=osp.splitext(osp.basename(config))[0],
        params_m=round(params / 1e6, 2),
        input=f'{short_side}x{int(round(short_side * width / height))}',
        clip=f'{settings.clip_len}x{settings.frame_interval}',
        frames=num_frames,
        seconds=round(seconds, 2),
        fps=round(num_frames / seconds, 3),
        score_fps=round(num_frames / result.timings['score'], 3),
        tubes=len(result.tubes),
    )


def parse_spec(spec: str) -> Tuple[str, int, int]:
    """``CONFIG[:SHORT_SIDE[:FRAMES]]`` -> absolute config path, short side, frames.

    A relative ``CONFIG`` is relative to the repository root.
    """
    config, *rest = spec.split(':')
    short_side = int(rest[0]) if rest else DEFAULT_SHORT_SIDE
    frames = int(rest[1]) if len(rest) > 1 else DEFAULT_FRAMES
    config = config if osp.isabs(config) else repo_path(config)
    if not osp.isfile(config):
        raise FileNotFoundError(f'--configs {spec}: no such config file {config}')
    return config, short_side, frames


def machine_summary(threads: int) -> Dict:
    """Where and when the figures were measured: date, CPU, cores, load, torch."""
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
    return dict(
        date=datetime.date.today().isoformat(),
        cpu=platform.processor() or platform.machine(),
        cores=os.cpu_count(),
        load_average_1min=round(load, 2),
        cuda=torch.cuda.is_available(),
        torch=torch.__version__,
        threads=threads,
    )


def format_table(rows: List[Dict]) -> str:
    """The Markdown table of :data:`COLUMNS`, one line per row."""
    lines = ['| ' + ' | '.join(title for title, _ in COLUMNS) + ' |']
    lines.append('|' + '---|' * len(COLUMNS))
    for row in rows:
        lines.append('| ' + ' | '.join(str(row[key]) for _, key in COLUMNS) + ' |')
    return '\n'.join(lines)


def run_benchmarks(
    configs: Optional[Sequence[str]] = None,
    video_size: Optional[Tuple[int, int]] = None,
    threads: Optional[int] = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    json_file: Optional[str] = None,
    quick: bool = False,
) -> List[Dict]:
    """Benchmark every config; print each row, the machine and the table.

    Args:
        configs: ``CONFIG[:SHORT_SIDE[:FRAMES]]`` entries (default
            :data:`DEFAULT_CONFIGS`; ``quick``: :data:`QUICK_CONFIGS`). Every config
            is checked before any run.
        video_size: ``(height, width)`` of the generated video (default
            :data:`VIDEO_SIZE`; ``quick``: :data:`QUICK_VIDEO_SIZE`).
        threads: torch and OpenCV CPU threads (default :data:`DEFAULT_THREADS`;
            ``quick``: :data:`QUICK_THREADS`).
        batch_size: clips scored per forward pass.
        json_file: also write the machine and the rows here (atomically).
        quick: the defaults of a check that the benchmark runs (seconds); what
            is given explicitly still applies.

    Returns:
        One dict per config (the keys of :data:`COLUMNS`, ``seconds``, ``tubes``).
    """
    if quick:
        configs = configs or QUICK_CONFIGS
        video_size = video_size or parse_size(QUICK_VIDEO_SIZE)
        threads = threads or QUICK_THREADS
    threads = threads or DEFAULT_THREADS
    video_size = video_size or parse_size(VIDEO_SIZE)
    specs = [parse_spec(spec) for spec in configs or DEFAULT_CONFIGS]
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    machine = machine_summary(threads)
    rows = []
    with tempfile.TemporaryDirectory() as work_dir:
        for config, short_side, frames in specs:
            rows.append(benchmark(config, short_side, frames, work_dir, batch_size, video_size))
            print(rows[-1], flush=True)
    height, width = video_size
    print(
        f'\n{machine["date"]}, {machine["cores"]} CPU cores ({machine["cpu"]}), '
        f'CUDA {"yes" if machine["cuda"] else "no"}, load average {machine["load_average_1min"]}; '
        f'{threads} threads, torch {machine["torch"]}; video {height}x{width}\n'
    )
    print(format_table(rows))
    if json_file:
        tmp = json_file + '.tmp'
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(dict(machine, video_size=[height, width], rows=rows), f, indent=1)
        os.replace(tmp, json_file)
    return rows
