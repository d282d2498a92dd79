"""Throughput of the video demo (frames per second) on a generated video, CPU threads fixed.

Runs :func:`pcca_plugin.visualization.video_demo.run_video_demo` end to end
(read, score every frame's clip, link, draw and write) with random weights on
a generated 16:9 video with two moving persons in every frame, for each
config, and prints a Markdown table (and writes it as JSON with ``--json``).

Usage::

    python tools/demo/benchmark_demo.py [--threads 2] [--frames 32] [--json OUT.json]
        [--configs CONFIG[:SHORT_SIDE[:FRAMES]] ...]
"""

import argparse
import json
import os
import os.path as osp
import sys
import tempfile
import time
from typing import Dict, List, Optional

import cv2
import numpy as np

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import torch  # noqa: E402

import pcca_plugin  # noqa: E402,F401
from pcca_plugin.visualization.video_demo import (  # noqa: E402
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
#: The generated video: 360x640 (16:9, like MultiSports' 720x1280 halved) at 25 fps.
VIDEO_HEIGHT, VIDEO_WIDTH, VIDEO_FPS = 360, 640, 25.0
#: Two persons per frame, as normalised boxes moving by this much per frame.
PERSON_BOXES = ((0.1, 0.3, 0.25, 0.9), (0.6, 0.25, 0.75, 0.85))
STEP_PER_FRAME = 0.005
PERSON_SCORE = 0.9


def make_video(path: str, num_frames: int) -> Dict[int, np.ndarray]:
    """Write the benchmark video; return its proposals (frame -> ``(2, 5)``)."""
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(
        path, cv2.VideoWriter_fourcc(*'mp4v'), VIDEO_FPS, (VIDEO_WIDTH, VIDEO_HEIGHT)
    )
    proposals = {}
    size = np.array([VIDEO_WIDTH, VIDEO_HEIGHT, VIDEO_WIDTH, VIDEO_HEIGHT])
    for t in range(num_frames):
        frame = rng.integers(40, 120, (VIDEO_HEIGHT, VIDEO_WIDTH, 3), dtype=np.uint8)
        rows = []
        for index, box in enumerate(PERSON_BOXES):
            shift = STEP_PER_FRAME * t * (1 if index == 0 else -1)
            moved = np.array(box) + np.array([shift, 0, shift, 0])
            x1, y1, x2, y2 = (moved * size).astype(int)
            cv2.rectangle(frame, (x1, y1), (x2, y2), (230, 230, 230), -1)
            rows.append(list(moved) + [PERSON_SCORE])
        writer.write(frame)
        proposals[t + 1] = np.array(rows, dtype=np.float32)
    writer.release()
    return proposals


def benchmark(
    config: str, short_side: int, num_frames: int, work_dir: str, batch_size: int
) -> Dict:
    """Run the demo once on a fresh video; return the figures."""
    video = osp.join(work_dir, f'bench_{num_frames}.mp4')
    proposals = make_video(video, num_frames)
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
        config=osp.basename(config),
        params_m=round(params / 1e6, 2),
        input=f'{short_side}x{int(round(short_side * VIDEO_WIDTH / VIDEO_HEIGHT))}',
        clip=f'{settings.clip_len}x{settings.frame_interval}',
        frames=num_frames,
        seconds=round(seconds, 2),
        fps=round(num_frames / seconds, 3),
        score_fps=round(num_frames / result.timings['score'], 3),
        tubes=len(result.tubes),
    )


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=2, help='torch/OpenCV CPU threads')
    parser.add_argument(
        '--configs', nargs='+', default=list(DEFAULT_CONFIGS), help='CONFIG[:SHORT_SIDE[:FRAMES]]'
    )
    parser.add_argument('--batch-size', type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument('--json', help='write the figures here')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> List[Dict]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as work_dir:
        for spec in args.configs:
            config, *rest = spec.split(':')
            short_side = int(rest[0]) if rest else 256
            frames = int(rest[1]) if len(rest) > 1 else 32
            config = config if osp.isabs(config) else osp.join(REPO_ROOT, config)
            rows.append(benchmark(config, short_side, frames, work_dir, args.batch_size))
            print(rows[-1], flush=True)
    header = (
        '| config | params (M) | input | clip | frames | s | fps (end to end) | fps (scoring) |'
    )
    print(f'\n{args.threads} threads ({torch.__version__}, CPU)\n\n{header}')
    print('|' + '---|' * 8)
    for r in rows:
        print(
            f'| {r["config"]} | {r["params_m"]} | {r["input"]} | {r["clip"]} | {r["frames"]} '
            f'| {r["seconds"]} | {r["fps"]} | {r["score_fps"]} |'
        )
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(dict(threads=args.threads, rows=rows), f, indent=1)
    return rows


if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', '2')
    main()
