"""Benchmark the PCCA head against mmaction2's ACRN and linear heads.

Compares, at the paper's sizes (C = 2304 channels of SlowFast-R101, a 16x29
feature map for a 256x455 input with res5 stride 1, N persons):

- ``pcca``: :class:`ContextRoIExtractor` (7x7 person + 9x9 extended-box
  context) + :class:`PCCABBoxHead` (3 layers, 8 heads, 1024 dims);
- ``acrn``: mmaction2's ``SingleRoIExtractor3D`` (8x8, as in its ACRN config)
  + ``ACRNHead`` (tile the person feature over the map, concatenate, 1x1 conv
  4608->2304, one 3x3 conv) + ``BBoxHeadAVA``;
- ``linear``: ``SingleRoIExtractor3D`` (7x7) + ``BBoxHeadAVA`` (max-pool, fc).

Each head includes its RoI extractor and temporal pooling. Reported: forward
(no grad) and forward+backward (gradients for the head and the feature map)
median times, parameters, multiply-adds (analytic, and counted by
``torch.utils.flop_counter``), and ratios. Runs are interleaved (every
repetition loops over all heads and sizes) in one process so that machine
load affects all heads alike. Finally the share of the PCCA head in the whole
detector's forward time (SlowFast-R50, random weights) is measured.

Usage::

    python tools/benchmark_heads.py --out work_dirs/benchmark_heads.md

Timing clock: on a GPU, wall-clock time with ``cuda.synchronize``. On a CPU,
the **process CPU time** with one torch thread by default: on a shared
machine (other jobs competing for the cores) wall-clock medians drift by
2-3x between runs, while the CPU time a computation consumes does not
depend on what else runs. ``--clock wall`` gives wall-clock time instead.

On a 2-core CPU the default run takes about 10 minutes, most of it ACRN at
N = 32; ACRN at N = 128 is skipped there by default
(``--acrn-max-persons``), because one forward+backward takes minutes.
"""

import argparse
import json
import os
import statistics
import time
from typing import Callable, Dict, List, Sequence

import torch
import torch.nn as nn
from mmengine.utils import ProgressBar
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import pcca_plugin

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Where the detector-share measurement takes its backbone from.
PCCA_MODEL_CONFIG = os.path.join(REPO_ROOT, 'configs', '_base_', 'models', 'slowfast-r101_pcca.py')
#: SlowFast-R50 for the head's share of a whole detector.
DETECTOR_DEPTH = 50

# pcca_plugin's compatibility fixes must run before mmaction.models is imported.
pcca_plugin.compat.apply_all()

from mmaction.models.roi_heads import ACRNHead, BBoxHeadAVA, SingleRoIExtractor3D  # noqa: E402

from pcca_plugin.models import (  # noqa: E402
    ContextRoIExtractor,
    PCCABBoxHead,
    count_macs_per_person,
)

#: SlowFast-R101 8x8, beta_inv 8: slow 2048 + fast 256 channels.
SLOW_CHANNELS, FAST_CHANNELS = 2048, 256
SLOW_FRAMES, FAST_FRAMES = 8, 32
#: 256x455 input, res5 stride 1 -> stride 16.
FEAT_H, FEAT_W, STRIDE = 16, 29, 16
IMG_H, IMG_W = 256, 455
NUM_CLASSES = 66
PERSONS = (1, 8, 32, 128)
#: ACRN's stock RoI size (mmaction2 slowfast-acrn config).
ACRN_ROI_SIZE = 8
LINEAR_ROI_SIZE = 7


class HeadUnderTest(nn.Module):
    """Extractor + head behind one ``forward(feat, rois) -> logits``."""

    def __init__(self, kind: str, channels: int, num_classes: int) -> None:
        super().__init__()
        self.kind = kind
        if kind == 'pcca':
            self.extractor = ContextRoIExtractor(featmap_stride=STRIDE, in_channels=channels)
            self.head = PCCABBoxHead(in_channels=channels, num_classes=num_classes)
        elif kind == 'acrn':
            self.extractor = SingleRoIExtractor3D(featmap_stride=STRIDE, output_size=ACRN_ROI_SIZE)
            self.shared = ACRNHead(in_channels=2 * channels, out_channels=channels)
            self.head = BBoxHeadAVA(
                background_class=False,
                in_channels=channels,
                num_classes=num_classes,
                dropout_ratio=0.5,
            )
        elif kind == 'linear':
            self.extractor = SingleRoIExtractor3D(
                featmap_stride=STRIDE, output_size=LINEAR_ROI_SIZE
            )
            self.head = BBoxHeadAVA(
                background_class=False,
                in_channels=channels,
                num_classes=num_classes,
                dropout_ratio=0.5,
            )
        else:
            raise ValueError(f'unknown head {kind!r}; choose pcca, acrn or linear.')
        if hasattr(self.head, 'init_weights'):
            self.head.init_weights()

    def forward(self, feat, rois):
        if self.kind == 'pcca':
            person, context = self.extractor(feat, rois, [(IMG_H, IMG_W)] * feat[0].shape[0])
            return self.head(person, context)
        roi_feats, global_feat = self.extractor(feat, rois)
        if self.kind == 'acrn':
            roi_feats = self.shared(roi_feats, global_feat, rois)
        return self.head(roi_feats)


def analytic_macs(kind: str, channels: int, num_classes: int) -> float:
    """Multiply-adds per person of the dense layers (RoIAlign/pooling left out)."""
    if kind == 'pcca':
        return count_macs_per_person(channels, 81) + 1024 * num_classes
    if kind == 'acrn':
        positions = FEAT_H * FEAT_W
        conv1 = positions * 2 * channels * channels
        conv2 = positions * channels * channels * 9
        return conv1 + conv2 + channels * num_classes
    return channels * num_classes


def random_rois(num: int, generator: torch.Generator) -> torch.Tensor:
    """``num`` plausible person boxes in a 256x455 frame, ``(N, 5)``."""
    w = torch.empty(num).uniform_(30, 120, generator=generator)
    h = torch.empty(num).uniform_(60, 220, generator=generator)
    x1 = torch.rand(num, generator=generator) * (IMG_W - w)
    y1 = torch.rand(num, generator=generator) * (IMG_H - h)
    return torch.stack([torch.zeros(num), x1, y1, x1 + w, y1 + h], dim=1)  # (N, 5)


def make_features(device: torch.device, requires_grad: bool):
    slow = torch.randn(1, SLOW_CHANNELS, SLOW_FRAMES, FEAT_H, FEAT_W, device=device)
    fast = torch.randn(1, FAST_CHANNELS, FAST_FRAMES, FEAT_H, FEAT_W, device=device)
    return (slow.requires_grad_(requires_grad), fast.requires_grad_(requires_grad))


def sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


#: The clock used by :func:`time_call`; set by :func:`main` from ``--clock``.
CLOCKS = dict(wall=time.perf_counter, cpu=time.process_time)
_clock = CLOCKS['wall']


def time_call(device: torch.device, fn: Callable, *args):
    """Run ``fn(*args)``; return ``(seconds, result)`` on the selected clock."""
    sync(device)
    start = _clock()
    result = fn(*args)
    sync(device)
    return _clock() - start, result


def counted_macs(model: HeadUnderTest, feat, rois) -> float:
    """Multiply-adds of one forward counted by torch's FlopCounterMode (FLOPs / 2).

    Train mode and the math attention backend: the eval fast path of
    ``nn.MultiheadAttention`` and fused attention kernels are invisible to the
    counter.
    """
    counter = FlopCounterMode(display=False)
    model.train()
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        model(feat, rois)
    return counter.get_total_flops() / 2


def benchmark_heads(args, device: torch.device) -> List[Dict]:
    channels = SLOW_CHANNELS + FAST_CHANNELS
    generator = torch.Generator().manual_seed(0)
    models = {k: HeadUnderTest(k, channels, NUM_CLASSES).to(device) for k in args.heads}
    rois = {n: random_rois(n, generator).to(device) for n in args.persons}
    feat_nograd = make_features(device, requires_grad=False)
    feat_grad = make_features(device, requires_grad=True)

    def runnable(kind, n):
        return not (kind == 'acrn' and n > args.acrn_max_persons)

    cases = [(k, n) for k in args.heads for n in args.persons if runnable(k, n)]
    times = {(k, n, mode): [] for k, n in cases for mode in ('fwd', 'fwdbwd')}

    def forward_only(kind, n):
        models[kind].eval()
        with torch.no_grad():
            models[kind](feat_nograd, rois[n])

    def forward_backward(kind, n):
        models[kind].train()
        models[kind].zero_grad(set_to_none=True)
        logits = models[kind](feat_grad, rois[n])
        logits.float().sum().backward()

    # warm-up (allocator, kernels), not timed
    for kind, n in cases:
        if n == min(args.persons):
            forward_only(kind, n)
            forward_backward(kind, n)

    def repeats(kind):
        return args.acrn_repeats if kind == 'acrn' else args.repeats

    total = sum(repeats(kind) for kind, _ in cases)
    print(f'timing {len(cases)} cases, {total} runs (interleaved)')
    progress = ProgressBar(total)
    for rep in range(max(args.repeats, args.acrn_repeats)):
        for kind, n in cases:
            if rep >= repeats(kind):
                continue
            times[(kind, n, 'fwd')].append(time_call(device, forward_only, kind, n)[0])
            times[(kind, n, 'fwdbwd')].append(time_call(device, forward_backward, kind, n)[0])
            progress.update()
    print()

    rows = []
    for kind, n in cases:
        model = models[kind]
        fwd = statistics.median(times[(kind, n, 'fwd')])
        fwdbwd = statistics.median(times[(kind, n, 'fwdbwd')])
        rows.append(
            dict(
                head=kind,
                persons=n,
                fwd_ms=fwd * 1e3,
                fwdbwd_ms=fwdbwd * 1e3,
                fwdbwd_ms_per_person=fwdbwd * 1e3 / n,
                params_m=sum(p.numel() for p in model.parameters()) / 1e6,
                gmacs_per_person_analytic=analytic_macs(kind, channels, NUM_CLASSES) / 1e9,
                gmacs_per_person_counted=counted_macs(model, feat_nograd, rois[n]) / n / 1e9,
                repeats=len(times[(kind, n, 'fwd')]),
            )
        )
    return rows


def detector_share(args, device: torch.device) -> Dict:
    """Share of the PCCA head in a SlowFast-R50 detector's forward time."""
    from mmaction.registry import MODELS as MMACTION_MODELS
    from mmengine.config import Config

    # The paper's SlowFast 8x8 backbone (res5 stride 1, dilation 2) from our config, at depth 50.
    backbone_cfg = Config.fromfile(PCCA_MODEL_CONFIG).model.backbone
    backbone_cfg.type = 'ResNet3dSlowFast'
    backbone_cfg.slow_pathway.depth = backbone_cfg.fast_pathway.depth = DETECTOR_DEPTH
    backbone = MMACTION_MODELS.build(backbone_cfg).to(device).eval()
    head = HeadUnderTest('pcca', SLOW_CHANNELS + FAST_CHANNELS, NUM_CLASSES).to(device).eval()
    h, w = args.clip_size
    clip = torch.randn(1, 3, args.clip_frames, h, w, device=device)
    rois = random_rois(args.detector_persons, torch.Generator().manual_seed(1)).to(device)
    rois[:, 1::2] *= w / IMG_W
    rois[:, 2::2] *= h / IMG_H
    backbone_times, head_times = [], []
    with torch.no_grad():
        feat = backbone(clip)
        head(feat, rois)  # warm-up
        for _ in range(args.detector_repeats):
            seconds, feat = time_call(device, backbone, clip)
            backbone_times.append(seconds)
            head_times.append(time_call(device, head, feat, rois)[0])
    backbone_t = statistics.median(backbone_times)
    head_t = statistics.median(head_times)
    return dict(
        clip=f'{args.clip_frames}x{h}x{w}',
        persons=args.detector_persons,
        feature=tuple(feat[0].shape[-2:]),
        backbone_ms=backbone_t * 1e3,
        head_ms=head_t * 1e3,
        head_share=head_t / (backbone_t + head_t),
    )


def to_markdown(rows: List[Dict], share: Dict, device: str, threads: int, clock: str) -> str:
    lines = [
        f'Device: {device}, {threads} torch thread(s), clock: {clock} time. C = 2304, feature '
        f'map {FEAT_H}x{FEAT_W} (slow T={SLOW_FRAMES}, fast T={FAST_FRAMES}), {NUM_CLASSES} '
        'classes; medians (repeats in the last column).',
        '',
        '| head | N | fwd (ms) | fwd+bwd (ms) | fwd+bwd per person (ms) | params (M) '
        '| GMACs/person (analytic) | GMACs/person (counted) | runs |',
        '|---|---|---|---|---|---|---|---|---|',
    ]
    for r in rows:
        lines.append(
            f'| {r["head"]} | {r["persons"]} | {r["fwd_ms"]:.1f} | {r["fwdbwd_ms"]:.1f} | '
            f'{r["fwdbwd_ms_per_person"]:.2f} | {r["params_m"]:.2f} | '
            f'{r["gmacs_per_person_analytic"]:.4g} | {r["gmacs_per_person_counted"]:.4g} | '
            f'{r["repeats"]} |'
        )
    by = {(r['head'], r['persons']): r for r in rows}
    lines += ['', '| ratio | value |', '|---|---|']
    if ('pcca', 32) in by and ('acrn', 32) in by:
        ratio = by[('pcca', 32)]['fwdbwd_ms_per_person'] / by[('acrn', 32)]['fwdbwd_ms_per_person']
        lines.append(f'| PCCA / ACRN fwd+bwd per person, N=32 (bar <= 0.10) | {ratio:.3f} |')
        ratio = by[('pcca', 32)]['fwd_ms'] / by[('acrn', 32)]['fwd_ms']
        lines.append(f'| PCCA / ACRN fwd, N=32 | {ratio:.3f} |')
    if ('pcca', 32) in by and ('linear', 32) in by:
        ratio = by[('pcca', 32)]['fwdbwd_ms'] / by[('linear', 32)]['fwdbwd_ms']
        lines.append(f'| PCCA / linear fwd+bwd, N=32 | {ratio:.2f} |')
    for kind in ('pcca', 'acrn', 'linear'):
        if (kind, 128) in by and (kind, 32) in by:
            for mode in ('fwd_ms', 'fwdbwd_ms'):
                ratio = by[(kind, 128)][mode] / by[(kind, 32)][mode]
                bar = ' (bar 3.5-4.5)' if kind == 'pcca' else ''
                lines.append(f'| {kind} {mode[:-3]} time N=128 / N=32{bar} | {ratio:.2f} |')
    if share:
        lines += [
            '',
            f'Whole detector (SlowFast-R50 8x8, res5 stride 1, random weights), clip '
            f'{share["clip"]}, {share["persons"]} persons, feature map '
            f'{share["feature"][0]}x{share["feature"][1]}: backbone {share["backbone_ms"]:.0f} ms, '
            f'PCCA head {share["head_ms"]:.1f} ms, head share of the forward '
            f'{100 * share["head_share"]:.1f}%.',
        ]
    return '\n'.join(lines) + '\n'


def parse_args(argv: Sequence[str] = None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--heads', nargs='+', default=['pcca', 'acrn', 'linear'])
    parser.add_argument('--persons', nargs='+', type=int, default=list(PERSONS))
    parser.add_argument('--repeats', type=int, default=5, help='timed runs per case')
    parser.add_argument(
        '--acrn-repeats',
        type=int,
        default=2,
        help='timed runs per ACRN case (it is 37x dearer per person)',
    )
    parser.add_argument(
        '--clock',
        choices=sorted(CLOCKS),
        default=None,
        help='default: cpu (process time) on CPU, wall on GPU',
    )
    parser.add_argument(
        '--acrn-max-persons',
        type=int,
        default=None,
        help='skip ACRN above this N (default: 32 on CPU, no limit on GPU)',
    )
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument(
        '--threads', type=int, default=None, help='torch CPU threads (default 1 with the cpu clock)'
    )
    parser.add_argument('--skip-detector', action='store_true')
    parser.add_argument('--clip-frames', type=int, default=32)
    parser.add_argument('--clip-size', nargs=2, type=int, default=[IMG_H, IMG_W])
    parser.add_argument('--detector-persons', type=int, default=8)
    parser.add_argument('--detector-repeats', type=int, default=3)
    parser.add_argument('--out', default=None, help='write the markdown table here')
    args = parser.parse_args(argv)
    if args.clock is None:
        args.clock = 'wall' if args.device.startswith('cuda') else 'cpu'
    if args.threads is None and args.clock == 'cpu':
        args.threads = 1
    if args.acrn_max_persons is None:
        args.acrn_max_persons = max(args.persons) if args.device.startswith('cuda') else 32
    return args


def main(argv: Sequence[str] = None) -> str:
    global _clock
    args = parse_args(argv)
    _clock = CLOCKS[args.clock]
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    start = time.perf_counter()
    rows = benchmark_heads(args, device)
    share = {} if args.skip_detector else detector_share(args, device)
    text = to_markdown(rows, share, str(device), torch.get_num_threads(), args.clock)
    text += f'\nTotal benchmark wall time: {time.perf_counter() - start:.0f} s.\n'
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            f.write(text)
        with open(os.path.splitext(args.out)[0] + '.json', 'w') as f:
            json.dump(dict(rows=rows, detector=share), f, indent=1, default=str)
    return text


if __name__ == '__main__':
    main()
