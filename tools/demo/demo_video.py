"""Detect and link actions in a video, write it annotated (tube id, label, score).

Usage::

    python tools/demo/demo_video.py VIDEO CONFIG CHECKPOINT --out OUT.mp4 \\
        (--det-config DET_CONFIG --det-checkpoint DET_CKPT | --proposals PROPOSALS.pkl) \\
        [--json TUBES.json] [--short-side 256] [--batch-size 4] [--class-names NAMES.json] \\
        [--onnx MODEL.onnx]

Persons come from an mmdet detector (``--det-config/--det-checkpoint``, the
detector of ``tools/det/generate_proposals.py``) or from a proposal pickle
(frame -> ``(n, 5)`` normalised ``[x1, y1, x2, y2, score]``, keyed by the
1-based frame number or ``'<video_name>,<frame>'``). Every frame with persons
scoring at least the config's ``person_det_score_thr`` is a key frame; its
clip is scored by the action detector, the frames' detections are linked into
tubes (official MultiSports linking) and drawn: each tube in its own colour,
its ``#id label score`` label stacked with the other labels of the frame
(several tubes on one person never overwrite each other) inside the frame,
and a legend of the frame's tubes. Any video OpenCV or decord reads works, at
any resolution and frame rate; the output keeps the frame count and rate
(small videos are upscaled to 240 px high for legible labels). The demo is
:func:`pcca_plugin.visualization.video_demo.demo_video_file`.
"""

import argparse
import os
from typing import List, Optional

import pcca_plugin
from pcca_plugin.evaluation.functional import MIN_TUBE_LENGTH, MIN_TUBE_SCORE
from pcca_plugin.utils.cli import add_debug_argument, run_cli
from pcca_plugin.visualization.video_demo import DEFAULT_BATCH_SIZE, DemoResult, demo_video_file


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('video', help='input video (any format OpenCV or decord reads)')
    parser.add_argument('config', help='action detector config (configs/pcca/...)')
    parser.add_argument('checkpoint', help='action detector checkpoint')
    parser.add_argument('--out', required=True, help='annotated mp4 to write')
    parser.add_argument('--json', help='write the tubes as JSON here')
    persons = parser.add_mutually_exclusive_group(required=True)
    persons.add_argument('--proposals', help='person boxes pickle')
    persons.add_argument('--det-config', help='mmdet person detector config')
    parser.add_argument('--det-checkpoint', help='mmdet person detector checkpoint')
    parser.add_argument('--det-batch-size', type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument('--video-name', help='video name in the proposal keys (default: file stem)')
    parser.add_argument('--short-side', type=int, help="model input short side (default: config's)")
    parser.add_argument('--person-score-thr', type=float, help="default: the config's")
    parser.add_argument('--batch-size', type=int, default=DEFAULT_BATCH_SIZE, help='clips per pass')
    parser.add_argument('--class-names', help='JSON list (or text file, one per line) of names')
    parser.add_argument('--len-thr', type=int, default=MIN_TUBE_LENGTH, help='min tube length')
    parser.add_argument('--tube-score-thr', type=float, default=MIN_TUBE_SCORE)
    parser.add_argument('--device', default='cpu', help="torch device, e.g. 'cuda:0'")
    parser.add_argument(
        '--onnx', help='run this exported detector in onnxruntime (CHECKPOINT is not read)'
    )
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    args = add_debug_argument(parser).parse_args(argv)
    if args.det_config and not args.det_checkpoint:
        parser.error('--det-config needs --det-checkpoint')
    for name in ('batch_size', 'det_batch_size'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1')
    return args


def main(argv: Optional[List[str]] = None) -> DemoResult:
    """Run the demo on one video; returns what it found and wrote."""
    args = parse_args(argv)
    pcca_plugin.register_all_modules()
    result = demo_video_file(
        args.video,
        args.config,
        args.checkpoint,
        proposal_file=args.proposals,
        det_config=args.det_config,
        det_checkpoint=args.det_checkpoint,
        short_side=args.short_side,
        person_score_thr=args.person_score_thr,
        class_names_file=args.class_names,
        device=args.device,
        onnx=args.onnx,
        out=args.out,
        json_out=args.json,
        video_name=args.video_name,
        batch_size=args.batch_size,
        det_batch_size=args.det_batch_size,
        len_thr=args.len_thr,
        tube_score_thr=args.tube_score_thr,
        progress=not args.no_progress,
    )
    timing = ', '.join(f'{k} {v:.1f}s' for k, v in result.timings.items())
    print(
        f'{args.video}: {result.num_frames} frames {result.width}x{result.height} at '
        f'{result.fps:g} fps -> {len(result.tubes)} tubes, {args.out} '
        f'({result.out_frames} frames {result.out_size[1]}x{result.out_size[0]}); '
        f'{result.throughput:.2f} frames/s ({timing})'
    )
    return result


if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', '2')
    run_cli(main)
