"""Benchmark the PCCA head (both attention implementations) against the ACRN and linear heads.

Compares, at the paper's sizes (C = 2304 channels of SlowFast-R101, a 16x29
feature map for a 256x455 input with res5 stride 1, N persons):

- ``pcca``: :class:`ContextRoIExtractor` (7x7 person + 9x9 extended-box
  context) + :class:`PCCABBoxHead` (3 layers, 8 heads, 1024 dims) with the
  default ``attn_impl='factored'`` (keys and values never computed);
- ``pcca-4/clip``: the same head and the same N persons, 4 on each of
  N / 4 clips (the other cases put all N persons on one clip): with few
  persons per clip the head projects the context per person rather than
  once per clip (``context_projection='auto'``);
- ``pcca-standard``: the same head with ``attn_impl='standard'`` (the
  reference: context projected to keys and values in every layer);
- ``pcca-extractor``: the ``ContextRoIExtractor`` alone (its outputs summed
  into one logit), so that the head's own share can be read off;
- ``acrn``: mmaction2's ``SingleRoIExtractor3D`` (8x8, as in its ACRN config)
  + ``ACRNHead`` (tile the person feature over the map, concatenate, 1x1 conv
  4608->2304, one 3x3 conv) + ``BBoxHeadAVA``;
- ``linear``: ``SingleRoIExtractor3D`` (7x7) + ``BBoxHeadAVA`` (max-pool, fc).

Each head includes its RoI extractor and temporal pooling. Reported per head
and N: forward (eval mode, no grad: the factored PCCA head uses its folded
weights, cached once, as in inference) and forward+backward (training mode,
gradients for the head and the feature map: the factored head's per-person
products with the context projection) median times, in total and per
person; the memory of the
activations saved for the backward pass per person (counted with
``torch.autograd.graph.saved_tensors_hooks``: every saved tensor's storage
once, parameters and the input feature map left out), for extractor + head
and for the head alone beyond its inputs; parameters; multiply-adds per person
(analytic, and counted by ``torch.utils.flop_counter.FlopCounterMode``) of
the training forward and of the inference forward (cached fold), and the
one-off multiply-adds of the fold per weight update; and ratios. Runs are
interleaved (every repetition loops over all heads and sizes) in one process
so that machine load affects all heads alike. Finally the share
of the PCCA head in the whole detector's forward time (SlowFast-R50, random
weights) is measured.

Usage::

    python tools/benchmark_heads.py --out work_dirs/benchmark_heads.md
    python tools/benchmark_heads.py --quick   # tiny sizes, seconds; checks the tool runs

Timing clock: on a GPU, wall-clock time with ``cuda.synchronize``. On a CPU,
the **process CPU time** with one torch thread by default: on a shared
machine (other jobs competing for the cores) wall-clock medians drift by
2-3x between runs, while the CPU time a computation consumes does not
depend on what else runs. ``--clock wall`` gives wall-clock time instead.

On a 2-core CPU the default run takes about 8 minutes, most of it ACRN at
N = 32; ACRN at N = 128 is skipped there by default
(``--acrn-max-persons``), because one forward+backward takes minutes.
"""

import argparse
import dataclasses
import json
import os
import statistics
import time
from typing import Callable, Dict, List, Sequence, Tuple

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
)
from pcca_plugin.models.layers import SampledContext  # noqa: E402
from pcca_plugin.models.layers.cost_model import count_fold_macs  # noqa: E402

#: Feature stride of the res5 map (stride 1 in res5 -> 16).
STRIDE = 16
#: The 9x9 context grid of ContextRoIExtractor: 81 context tokens per person.
CONTEXT_TOKENS = 81
#: ACRN's stock RoI size (mmaction2 slowfast-acrn config).
ACRN_ROI_SIZE = 8
LINEAR_ROI_SIZE = 7
#: Dropout before the classifier in BBoxHeadAVA, as in mmaction2's configs.
CLASSIFIER_DROPOUT = 0.5
PERSONS = (8, 32, 128)
#: The N at which the bars are read (issue 14).
BAR_PERSONS = 32
#: Persons per clip of the ``pcca-4/clip`` case (the others put all N on one clip).
SPREAD_PERSONS_PER_CLIP = 4
SPREAD = f'pcca-{SPREAD_PERSONS_PER_CLIP}/clip'
HEADS = ('pcca', SPREAD, 'pcca-standard', 'pcca-extractor', 'acrn', 'linear')
#: Head name -> attention implementation of the PCCA head.
PCCA_IMPLS = {'pcca': 'factored', SPREAD: 'factored', 'pcca-standard': 'standard'}
MIB = 2**20
#: The documented columns of the table, in order (a test checks them).
COLUMNS = (
    'head',
    'N',
    'fwd (ms)',
    'fwd per person (ms)',
    'fwd+bwd (ms)',
    'fwd+bwd per person (ms)',
    'saved MiB/person (extractor+head)',
    'saved MiB/person (head)',
    'params (M)',
    'GMACs/person (analytic)',
    'GMACs/person (counted)',
    'inference GMACs/person (analytic)',
    'inference GMACs/person (counted)',
    'fold GMACs per weight update',
    'runs',
)


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Feature map, channels and head width of one benchmark setting.

    The defaults are the paper's: SlowFast-R101 8x8, beta_inv 8 (slow 2048 +
    fast 256 channels, T = 8 and 32), a 256x455 input at stride 16, a
    1024-wide 8-head PCCA head, 66 MultiSports classes.
    """

    slow_channels: int = 2048
    fast_channels: int = 256
    slow_frames: int = 8
    fast_frames: int = 32
    feat_h: int = 16
    feat_w: int = 29
    img_h: int = 256
    img_w: int = 455
    embed_dims: int = 1024
    num_heads: int = 8
    num_classes: int = 66

    @property
    def channels(self) -> int:
        return self.slow_channels + self.fast_channels


PAPER_SIZES = Sizes()
#: ``--quick``: every dimension small, so that the whole run takes seconds.
QUICK_SIZES = Sizes(
    slow_channels=32,
    fast_channels=8,
    slow_frames=2,
    fast_frames=8,
    feat_h=4,
    feat_w=6,
    img_h=64,
    img_w=96,
    embed_dims=32,
    num_heads=4,
    num_classes=8,
)


class HeadUnderTest(nn.Module):
    """Extractor + head behind ``extract(feat, rois)`` and ``classify(...) -> logits``."""

    def __init__(self, kind: str, sizes: Sizes) -> None:
        super().__init__()
        self.kind, self.sizes = kind, sizes
        channels, num_classes = sizes.channels, sizes.num_classes
        if kind == 'pcca-extractor':
            self.extractor = ContextRoIExtractor(featmap_stride=STRIDE, in_channels=channels)
        elif kind in PCCA_IMPLS:
            self.extractor = ContextRoIExtractor(featmap_stride=STRIDE, in_channels=channels)
            self.head = PCCABBoxHead(
                in_channels=channels,
                num_classes=num_classes,
                embed_dims=sizes.embed_dims,
                num_heads=sizes.num_heads,
                attn_impl=PCCA_IMPLS[kind],
            )
        elif kind == 'acrn':
            self.extractor = SingleRoIExtractor3D(featmap_stride=STRIDE, output_size=ACRN_ROI_SIZE)
            self.shared = ACRNHead(in_channels=2 * channels, out_channels=channels)
            self.head = BBoxHeadAVA(
                background_class=False,
                in_channels=channels,
                num_classes=num_classes,
                dropout_ratio=CLASSIFIER_DROPOUT,
            )
        elif kind == 'linear':
            self.extractor = SingleRoIExtractor3D(
                featmap_stride=STRIDE, output_size=LINEAR_ROI_SIZE
            )
            self.head = BBoxHeadAVA(
                background_class=False,
                in_channels=channels,
                num_classes=num_classes,
                dropout_ratio=CLASSIFIER_DROPOUT,
            )
        else:
            raise ValueError(f'unknown head {kind!r}; choose from {", ".join(HEADS)}.')
        if hasattr(self, 'head') and hasattr(self.head, 'init_weights'):
            self.head.init_weights()

    def extract(self, feat, rois) -> Tuple:
        """RoI features: ``(person (N, C), context (N, L, C))`` for PCCA, else ``(roi, global)``."""
        if self.kind in PCCA_IMPLS or self.kind == 'pcca-extractor':
            image_shapes = [(self.sizes.img_h, self.sizes.img_w)] * feat[0].shape[0]
            # as PCCARoIHead: the context as a sparse product where the extractor can
            person, context = self.extractor(feat, rois, image_shapes, lazy_context=True)
            if isinstance(context, SampledContext) and (
                self.kind == 'pcca-extractor'
                or self.head.transformer.execution_form(context) != 'per_clip'
            ):
                # the head would form the (N, L, C) tokens first thing: form them here, so
                # that they count as the extractor's output (the head's input), as with
                # mmcv's RoIAlign, and only the per-clip form's own tensors count as the head's
                context = context.tokens()
            return person, context
        return tuple(self.extractor(feat, rois))

    def classify(self, extracted: Tuple, rois) -> torch.Tensor:
        """Logits ``(N, K)`` from the extracted features (``(N, 1)`` for the extractor alone)."""
        if self.kind == 'pcca-extractor':
            person, context = extracted
            return (person.sum(dim=1) + context.sum(dim=(1, 2)))[:, None]  # (N, 1)
        if self.kind in PCCA_IMPLS:
            return self.head(*extracted)
        roi_feats, global_feat = extracted
        if self.kind == 'acrn':
            roi_feats = self.shared(roi_feats, global_feat, rois)
        return self.head(roi_feats)

    def forward(self, feat, rois):
        return self.classify(self.extract(feat, rois), rois)


def analytic_macs(
    model: HeadUnderTest, persons: int, inference: bool = False, clips: int = 1
) -> float:
    """Multiply-adds per person of the dense layers (RoIAlign/pooling left out).

    For PCCA, in the form the head uses for ``persons`` persons on ``clips``
    clips (``PersonContextTransformer.count_macs``: per-person products with
    the context projection, or one projection of the feature map per clip).
    ``inference``: without gradients, where the factored PCCA head uses its
    cached folded weights (the fold itself: :func:`fold_macs`).
    """
    kind, sizes = model.kind, model.sizes
    channels, num_classes = sizes.channels, sizes.num_classes
    if kind in PCCA_IMPLS:
        positions = clips * sizes.feat_h * sizes.feat_w
        transformer = model.head.transformer.count_macs(
            persons, CONTEXT_TOKENS, positions, with_grad=not inference
        )
        return transformer / persons + sizes.embed_dims * num_classes
    if kind == 'pcca-extractor':
        return 0
    if kind == 'acrn':
        positions = sizes.feat_h * sizes.feat_w
        conv1 = positions * 2 * channels * channels
        conv2 = positions * channels * channels * 9
        return conv1 + conv2 + channels * num_classes
    return channels * num_classes


def fold_macs(kind: str, sizes: Sizes) -> float:
    """Multiply-adds of folding the weights once per weight update (factored PCCA only)."""
    if PCCA_IMPLS.get(kind) != 'factored':
        return 0
    return count_fold_macs(sizes.channels, CONTEXT_TOKENS, embed_dims=sizes.embed_dims)


def random_rois(num: int, sizes: Sizes, generator: torch.Generator) -> torch.Tensor:
    """``num`` plausible person boxes in the frame, ``(N, 5)``."""
    img_h, img_w = sizes.img_h, sizes.img_w
    w = torch.empty(num).uniform_(0.07 * img_w, 0.26 * img_w, generator=generator)
    h = torch.empty(num).uniform_(0.23 * img_h, 0.86 * img_h, generator=generator)
    x1 = torch.rand(num, generator=generator) * (img_w - w)
    y1 = torch.rand(num, generator=generator) * (img_h - h)
    return torch.stack([torch.zeros(num), x1, y1, x1 + w, y1 + h], dim=1)  # (N, 5)


def make_features(sizes: Sizes, device: torch.device, requires_grad: bool, clips: int = 1):
    """Slow and fast features, ``(clips, C_s, T_s, H, W)`` and ``(clips, C_f, T_f, H, W)``."""
    slow = torch.randn(
        clips, sizes.slow_channels, sizes.slow_frames, sizes.feat_h, sizes.feat_w, device=device
    )
    fast = torch.randn(
        clips, sizes.fast_channels, sizes.fast_frames, sizes.feat_h, sizes.feat_w, device=device
    )
    return (slow.requires_grad_(requires_grad), fast.requires_grad_(requires_grad))


def clips_of(kind: str, persons: int) -> int:
    """Clips the ``persons`` of a case are spread over: N / 4 for ``pcca-4/clip``, else 1."""
    return -(-persons // SPREAD_PERSONS_PER_CLIP) if kind == SPREAD else 1


def spread_rois(rois: torch.Tensor, per_clip: int) -> torch.Tensor:
    """The same boxes, ``per_clip`` on each clip: ``(N, 5)`` with batch index ``i // per_clip``."""
    out = rois.clone()
    out[:, 0] = torch.div(torch.arange(rois.shape[0]), per_clip, rounding_mode='floor')
    return out


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


def _storages(tensors) -> set:
    """Storage addresses of the tensors (a ``SampledContext``'s feature-map table included)."""
    flat = []
    for t in tensors:
        flat += [t.table] if isinstance(t, SampledContext) else [t]
    return {t.untyped_storage().data_ptr() for t in flat if isinstance(t, torch.Tensor)}


def count_and_measure(model: HeadUnderTest, feat, rois) -> Dict:
    """One training-mode forward: multiply-adds and saved activations.

    Multiply-adds: torch's FlopCounterMode (FLOPs / 2), with the math
    attention backend so that fused kernels stay visible to the counter.
    Saved activations: every tensor autograd saves for the backward pass,
    each storage counted once; parameters (and views of them) and the input
    feature map are left out. ``head`` bytes are those saved by the head
    (after the extractor) that are not the extractor's outputs.

    Returns:
        dict: ``macs``, ``saved_bytes`` (extractor + head), ``head_saved_bytes``.
    """
    model.train()
    excluded = _storages(model.parameters()) | _storages(feat)
    saved = {'extractor': {}, 'head': {}}
    stage = ['extractor']

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in excluded:
            saved[stage[0]][storage.data_ptr()] = storage.nbytes()
        return tensor

    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            extracted = model.extract(feat, rois)
            stage[0] = 'head'
            model.classify(extracted, rois)
    inputs_of_head = _storages(extracted)
    everything = {**saved['extractor'], **saved['head']}
    head_only = {k: v for k, v in saved['head'].items() if k not in inputs_of_head}
    return dict(
        macs=counter.get_total_flops() / 2,
        saved_bytes=sum(everything.values()),
        head_saved_bytes=sum(head_only.values()),
    )


def count_inference(model: HeadUnderTest, feat, rois) -> float:
    """Multiply-adds of an eval-mode forward without gradients, the cached fold warm.

    The first forward builds the cache (factored PCCA head) and is not counted.
    """
    model.eval()
    with torch.no_grad():
        model(feat, rois)
        counter = FlopCounterMode(display=False)
        with sdpa_kernel(SDPBackend.MATH), counter:
            model(feat, rois)
    return counter.get_total_flops() / 2


def benchmark_heads(args, device: torch.device) -> List[Dict]:
    sizes = args.sizes
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    models = {k: HeadUnderTest(k, sizes).to(device) for k in args.heads}
    rois = {n: random_rois(n, sizes, generator).to(device) for n in args.persons}
    feat_nograd = make_features(sizes, device, requires_grad=False)
    feat_grad = make_features(sizes, device, requires_grad=True)
    spread = {}  # N -> (rois, features without and with grad) of the SPREAD case
    if SPREAD in args.heads:
        for n in args.persons:
            clips = clips_of(SPREAD, n)
            spread[n] = (
                spread_rois(rois[n], SPREAD_PERSONS_PER_CLIP),
                make_features(sizes, device, requires_grad=False, clips=clips),
                make_features(sizes, device, requires_grad=True, clips=clips),
            )

    def inputs(kind, n, grad):
        """``(features, rois)`` of a case."""
        if kind == SPREAD:
            return (spread[n][2] if grad else spread[n][1]), spread[n][0]
        return (feat_grad if grad else feat_nograd), rois[n]

    def runnable(kind, n):
        return not (kind == 'acrn' and n > args.acrn_max_persons)

    cases = [(k, n) for k in args.heads for n in args.persons if runnable(k, n)]
    times = {(k, n, mode): [] for k, n in cases for mode in ('fwd', 'fwdbwd')}

    def forward_only(kind, n):
        models[kind].eval()
        with torch.no_grad():
            models[kind](*inputs(kind, n, grad=False))

    def forward_backward(kind, n):
        models[kind].train()
        models[kind].zero_grad(set_to_none=True)
        logits = models[kind](*inputs(kind, n, grad=True))
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
        measured = count_and_measure(model, *inputs(kind, n, grad=True))
        model.zero_grad(set_to_none=True)
        inference_macs = count_inference(model, *inputs(kind, n, grad=False))
        clips = clips_of(kind, n)
        rows.append(
            dict(
                head=kind,
                persons=n,
                fwd_ms=fwd * 1e3,
                fwd_ms_per_person=fwd * 1e3 / n,
                fwdbwd_ms=fwdbwd * 1e3,
                fwdbwd_ms_per_person=fwdbwd * 1e3 / n,
                saved_mib_per_person=measured['saved_bytes'] / n / MIB,
                head_saved_mib_per_person=measured['head_saved_bytes'] / n / MIB,
                params_m=sum(p.numel() for p in model.parameters()) / 1e6,
                gmacs_per_person_analytic=analytic_macs(model, n, clips=clips) / 1e9,
                gmacs_per_person_counted=measured['macs'] / n / 1e9,
                inference_gmacs_per_person_analytic=analytic_macs(model, n, True, clips) / 1e9,
                inference_gmacs_per_person_counted=inference_macs / n / 1e9,
                fold_gmacs=fold_macs(kind, sizes) / 1e9,
                repeats=len(times[(kind, n, 'fwd')]),
            )
        )
    return rows


def detector_share(args, device: torch.device) -> Dict:
    """Share of the PCCA head in a SlowFast-R50 detector's forward time (paper sizes)."""
    from mmaction.registry import MODELS as MMACTION_MODELS
    from mmengine.config import Config

    # The paper's SlowFast 8x8 backbone (res5 stride 1, dilation 2) from our config, at depth 50.
    backbone_cfg = Config.fromfile(PCCA_MODEL_CONFIG).model.backbone
    backbone_cfg.type = 'ResNet3dSlowFast'
    backbone_cfg.slow_pathway.depth = backbone_cfg.fast_pathway.depth = DETECTOR_DEPTH
    backbone = MMACTION_MODELS.build(backbone_cfg).to(device).eval()
    h, w = args.clip_size
    sizes = dataclasses.replace(PAPER_SIZES, img_h=h, img_w=w)
    head = HeadUnderTest('pcca', sizes).to(device).eval()
    clip = torch.randn(1, 3, args.clip_frames, h, w, device=device)
    rois = random_rois(args.detector_persons, sizes, torch.Generator().manual_seed(1)).to(device)
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


def _cells(row: Dict) -> List[str]:
    return [
        row['head'],
        str(row['persons']),
        f'{row["fwd_ms"]:.1f}',
        f'{row["fwd_ms_per_person"]:.2f}',
        f'{row["fwdbwd_ms"]:.1f}',
        f'{row["fwdbwd_ms_per_person"]:.2f}',
        f'{row["saved_mib_per_person"]:.3g}',
        f'{row["head_saved_mib_per_person"]:.3g}',
        f'{row["params_m"]:.2f}',
        f'{row["gmacs_per_person_analytic"]:.4g}',
        f'{row["gmacs_per_person_counted"]:.4g}',
        f'{row["inference_gmacs_per_person_analytic"]:.4g}',
        f'{row["inference_gmacs_per_person_counted"]:.4g}',
        f'{row["fold_gmacs"]:.4g}',
        str(row['repeats']),
    ]


def ratio_lines(rows: List[Dict]) -> List[str]:
    """The ratios the bars are read from (those whose heads and N were run).

    The bars are read at N = 32; a run without N = 32 (``--quick``) shows the
    ratios at its largest N.
    """
    by = {(r['head'], r['persons']): r for r in rows}
    persons = {r['persons'] for r in rows}
    n = BAR_PERSONS if BAR_PERSONS in persons else max(persons)  # --quick: its largest N
    lines = ['| ratio | value |', '|---|---|']
    for kind in ('pcca', SPREAD, 'pcca-standard'):
        if (kind, n) in by and ('acrn', n) in by:
            pcca, acrn = by[(kind, n)], by[('acrn', n)]
            bar = ' (bar <= 0.01)' if kind == 'pcca' else ''
            ratio = pcca['fwdbwd_ms_per_person'] / acrn['fwdbwd_ms_per_person']
            lines.append(f'| {kind} / acrn fwd+bwd per person, N={n}{bar} | {ratio:.4f} |')
            ratio = pcca['fwd_ms_per_person'] / acrn['fwd_ms_per_person']
            lines.append(f'| {kind} / acrn fwd per person, N={n} | {ratio:.4f} |')
    if ('pcca', n) in by and ('pcca-extractor', n) in by and ('acrn', n) in by:
        head_only = (
            by[('pcca', n)]['fwdbwd_ms_per_person']
            - by[('pcca-extractor', n)]['fwdbwd_ms_per_person']
        )
        ratio = (
            by[('pcca-extractor', n)]['fwdbwd_ms_per_person']
            / (by[('acrn', n)]['fwdbwd_ms_per_person'])
        )
        lines.append(f'| pcca-extractor alone / acrn fwd+bwd per person, N={n} | {ratio:.4f} |')
        ratio = head_only / by[('acrn', n)]['fwdbwd_ms_per_person']
        lines.append(
            f'| (pcca - pcca-extractor) / acrn fwd+bwd per person, N={n}: the head alone '
            f'| {ratio:.4f} |'
        )
    if ('pcca', n) in by and ('pcca-standard', n) in by:
        new, old = by[('pcca', n)], by[('pcca-standard', n)]
        for key, label in (
            ('gmacs_per_person_analytic', 'MACs per person (training)'),
            ('inference_gmacs_per_person_analytic', 'MACs per person (inference, cached fold)'),
            ('fwd_ms_per_person', f'fwd time per person, N={n}'),
            ('fwdbwd_ms_per_person', f'fwd+bwd time per person, N={n}'),
            ('saved_mib_per_person', f'saved activations per person (extractor+head), N={n}'),
        ):
            lines.append(f'| pcca / pcca-standard {label} | {new[key] / old[key]:.3f} |')
        ratio = new['head_saved_mib_per_person'] / old['head_saved_mib_per_person']
        lines.append(
            f'| pcca / pcca-standard saved activations per person (head), N={n} (bar <= 0.2) '
            f'| {ratio:.3f} |'
        )
    if ('pcca', n) in by and ('linear', n) in by:
        ratio = by[('pcca', n)]['fwdbwd_ms'] / by[('linear', n)]['fwdbwd_ms']
        lines.append(f'| pcca / linear fwd+bwd, N={n} | {ratio:.2f} |')
    for kind in HEADS:
        if (kind, 128) in by and (kind, n) in by:
            for mode in ('fwd_ms', 'fwdbwd_ms'):
                ratio = by[(kind, 128)][mode] / by[(kind, n)][mode]
                lines.append(f'| {kind} {mode[:-3]} time N=128 / N={n} | {ratio:.2f} |')
    return lines


def to_markdown(
    rows: List[Dict], share: Dict, sizes: Sizes, device: str, threads: int, clock: str
) -> str:
    lines = [
        f'Device: {device}, {threads} torch thread(s), clock: {clock} time. C = {sizes.channels}, '
        f'feature map {sizes.feat_h}x{sizes.feat_w} (slow T={sizes.slow_frames}, fast '
        f'T={sizes.fast_frames}), PCCA D = {sizes.embed_dims} with {sizes.num_heads} heads, '
        f'{sizes.num_classes} classes; medians (repeats in the last column).'
        + (
            ' --quick: tiny sizes, to check that the tool runs; bars apply at the paper sizes.'
            if sizes == QUICK_SIZES
            else ''
        ),
        '',
        '| ' + ' | '.join(COLUMNS) + ' |',
        '|' + '---|' * len(COLUMNS),
    ]
    lines += ['| ' + ' | '.join(_cells(r)) + ' |' for r in rows]
    lines += [''] + ratio_lines(rows)
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
    parser.add_argument('--heads', nargs='+', choices=HEADS, default=list(HEADS))
    parser.add_argument('--persons', nargs='+', type=int, default=None, help='default 8 32 128')
    parser.add_argument('--repeats', type=int, default=None, help='timed runs per case (5)')
    parser.add_argument(
        '--acrn-repeats',
        type=int,
        default=None,
        help='timed runs per ACRN case (3; it is 100x dearer per person)',
    )
    parser.add_argument(
        '--quick',
        action='store_true',
        help='tiny sizes, N = 2 and 4, one run per case, no detector share: checks that the '
        'tool runs and prints every column, in seconds',
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
    parser.add_argument(
        '--clip-size', nargs=2, type=int, default=[PAPER_SIZES.img_h, PAPER_SIZES.img_w]
    )
    parser.add_argument('--detector-persons', type=int, default=8)
    parser.add_argument('--detector-repeats', type=int, default=3)
    parser.add_argument('--out', default=None, help='write the markdown table here')
    args = parser.parse_args(argv)
    quick = dict(persons=[2, 4], repeats=1, acrn_repeats=1)
    full = dict(persons=list(PERSONS), repeats=5, acrn_repeats=3)
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.sizes = QUICK_SIZES if args.quick else PAPER_SIZES
    if args.quick:
        args.skip_detector = True
    if args.clock is None:
        args.clock = 'wall' if args.device.startswith('cuda') else 'cpu'
    if args.threads is None and args.clock == 'cpu':
        args.threads = 1
    if args.acrn_max_persons is None:
        on_gpu = args.device.startswith('cuda')
        args.acrn_max_persons = max(args.persons) if on_gpu or args.quick else BAR_PERSONS
    return args


def write_atomically(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f'{path}.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
    os.replace(tmp, path)


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
    text = to_markdown(rows, share, args.sizes, str(device), torch.get_num_threads(), args.clock)
    text += f'\nTotal benchmark wall time: {time.perf_counter() - start:.0f} s.\n'
    print(text)
    if args.out:
        write_atomically(args.out, text)
        summary = dict(rows=rows, detector=share, sizes=dataclasses.asdict(args.sizes))
        write_atomically(
            os.path.splitext(args.out)[0] + '.json', json.dumps(summary, indent=1, default=str)
        )
    return text


if __name__ == '__main__':
    main()
