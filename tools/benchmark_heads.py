"""Benchmark the PCCA RoI head (both attention implementations) against the ACRN and linear heads.

Every case is a real RoI head built from a model config through the registry and run
through its ``_bbox_forward`` (RoI extractor, temporal pooling, head): ``pcca`` is the
``PCCARoIHead`` of ``configs/_base_/models/slowfast-r101_pcca.py`` with all N persons on
one clip, ``pcca-4/clip`` the same head with 4 persons per clip, ``pcca-standard`` with
``attn_impl='standard'``, ``pcca-extractor`` its ``ContextRoIExtractor`` alone; ``acrn``
mmaction2's ACRN ``AVARoIHead``; ``linear`` ``configs/_base_/models/slowfast-r101_linear.py``.
Per head and N: median times (fwd in eval mode, fwd+bwd in training), saved activations,
parameters, training and inference MACs per person (analytic and counted), the one-off
fold, ratios and the head's share of a detector; ``docs/model.md`` ("Cost: head
benchmark") explains every column. On a CPU the clock is the process CPU time with one
torch thread (``--clock wall`` for wall-clock time); ACRN at N = 128 is skipped there.

Usage::

    python tools/benchmark_heads.py --out work_dirs/benchmark_heads.md
    python tools/benchmark_heads.py --quick   # tiny sizes, seconds; checks the tool runs
"""

import argparse
import collections
import json
import os
import statistics
import time
from functools import partial
from typing import Dict, List, Sequence

import mmaction
import torch
from mmaction.registry import MODELS as ACTION_MODELS
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.utils import ProgressBar

import pcca_plugin
from pcca_plugin.models.layers import SampledContext
from pcca_plugin.models.layers.cost_model import count_fold_macs
from pcca_plugin.models.roi_heads.profiling import inference_macs, training_forward_cost
from pcca_plugin.utils.checkout import repo_path
from pcca_plugin.utils.cli import add_debug_argument, run_cli

PCCA_CONFIG = repo_path('configs', '_base_', 'models', 'slowfast-r101_pcca.py')
LINEAR_CONFIG = repo_path('configs', '_base_', 'models', 'slowfast-r101_linear.py')
ACRN_CONFIG = os.path.join(
    os.path.dirname(mmaction.__file__), '.mim', 'configs', 'detection', 'acrn',
    'slowfast-acrn_kinetics400-pretrained-r50_8xb8-8x8x1-cosine-10e_ava21-rgb.py',
)  # fmt: skip
DETECTOR_DEPTH = 50  # SlowFast-R50 for the head's share of a whole detector
PERSONS, BAR_PERSONS, SPREAD_PER_CLIP = (8, 32, 128), 32, 4  # the bars are read at N = 32
SPREAD = f'pcca-{SPREAD_PER_CLIP}/clip'
HEADS = ('pcca', SPREAD, 'pcca-standard', 'pcca-extractor', 'acrn', 'linear')
PCCA_IMPLS = {'pcca': 'factored', SPREAD: 'factored', 'pcca-standard': 'standard'}
PCCA_KINDS = (*PCCA_IMPLS, 'pcca-extractor')
MIB = 2**20
CLOCKS = dict(wall=time.perf_counter, cpu=time.process_time)
MODES = ('fwd', 'fwdbwd')  # eval-mode forward; training-mode forward and backward
#: The documented columns of the table, in order (a test checks them against docs/model.md).
COLUMNS = (
    'head', 'N', 'fwd (ms)', 'fwd per person (ms)', 'fwd+bwd (ms)', 'fwd+bwd per person (ms)',
    'saved MiB/person (extractor+head)', 'saved MiB/person (head)', 'params (M)',
    'GMACs/person (analytic)', 'GMACs/person (counted)', 'inference GMACs/person (analytic)',
    'inference GMACs/person (counted)', 'fold GMACs per weight update', 'runs',
)  # fmt: skip
#: How the cells of a row are printed, column by column.
CELL_FORMATS = ('{}', '{}', '{:.1f}', '{:.2f}', '{:.1f}', '{:.2f}', '{:.3g}', '{:.3g}', '{:.2f}')
CELL_FORMATS += ('{:.4g}',) * 5 + ('{}',)


#: Feature map, channels and head width; the paper's: SlowFast-R101 8x8 (beta_inv 8), a 256x455
#: input at stride 16, a 1024-wide 8-head PCCA head, 66 classes.
Sizes = collections.namedtuple(
    'Sizes', 'slow_channels fast_channels slow_frames fast_frames feat_h feat_w img_h img_w '
    'embed_dims num_heads num_classes',
)  # fmt: skip
PAPER_SIZES = Sizes(2048, 256, 8, 32, 16, 29, 256, 455, 1024, 8, 66)
QUICK_SIZES = Sizes(32, 8, 2, 8, 4, 6, 64, 96, 32, 4, 8)


def channels_of(sizes: Sizes) -> int:
    """``C``: the pathways' channels concatenated."""
    return sizes.slow_channels + sizes.fast_channels


def build_roi_head(kind: str, sizes: Sizes) -> torch.nn.Module:
    """The RoI head of a case from its model config, resized to ``sizes``."""
    channels = channels_of(sizes)
    if kind in PCCA_KINDS:
        cfg = Config.fromfile(PCCA_CONFIG).model.roi_head
        cfg.bbox_roi_extractor.in_channels = channels
        cfg.bbox_head.update(embed_dims=sizes.embed_dims, num_heads=sizes.num_heads)
        cfg.bbox_head.attn_impl = PCCA_IMPLS.get(kind, 'factored')
    else:
        cfg = Config.fromfile(ACRN_CONFIG if kind == 'acrn' else LINEAR_CONFIG).model.roi_head
        if kind == 'acrn':
            cfg.shared_head.update(in_channels=2 * channels, out_channels=channels)
    cfg.bbox_head.update(in_channels=channels, num_classes=sizes.num_classes)
    cfg.bbox_head.background_class = False
    with DefaultScope.overwrite_default_scope('mmdet'):
        roi_head = pcca_plugin.build_registered(MODELS, cfg)
    roi_head.bbox_head.init_weights()  # the head's own initialisation (and no init log)
    return roi_head


def forward(kind: str, roi_head, feat, rois, metas) -> torch.Tensor:
    """Logits ``(N, K)`` of the head's ``_bbox_forward`` (``(N, 1)`` for the extractor alone)."""
    if kind != 'pcca-extractor':
        return roi_head._bbox_forward(feat, rois, metas)['cls_score']
    shapes = [meta['img_shape'] for meta in metas]
    person, context = roi_head.bbox_roi_extractor(feat, rois, shapes, lazy_context=True)
    context = context.tokens() if isinstance(context, SampledContext) else context
    return (person.sum(dim=1) + context.sum(dim=(1, 2)))[:, None]  # (N, 1)


def analytic_macs(kind: str, roi_head, sizes: Sizes, persons: int, clips: int, grad: bool):
    """Multiply-adds per person of the dense layers (RoIAlign and pooling left out)."""
    channels, classes = channels_of(sizes), sizes.num_classes
    positions = sizes.feat_h * sizes.feat_w
    if kind in PCCA_IMPLS:  # the form the transformer uses for this batch
        tokens = roi_head.bbox_roi_extractor.num_context_tokens
        transformer = roi_head.bbox_head.transformer
        macs = transformer.count_macs(persons, tokens, clips * positions, with_grad=grad)
        return macs / persons + sizes.embed_dims * classes
    if kind == 'acrn':  # 1x1 conv 2C -> C and 3x3 conv C -> C over the map, per person
        return positions * channels * channels * (2 + 9) + channels * classes
    return 0 if kind == 'pcca-extractor' else channels * classes


def random_rois(num: int, sizes: Sizes, generator: torch.Generator) -> torch.Tensor:
    """``num`` plausible person boxes on clip 0, ``(N, 5)``."""
    img_h, img_w = sizes.img_h, sizes.img_w
    w = torch.empty(num).uniform_(0.07 * img_w, 0.26 * img_w, generator=generator)
    h = torch.empty(num).uniform_(0.23 * img_h, 0.86 * img_h, generator=generator)
    x1 = torch.rand(num, generator=generator) * (img_w - w)
    y1 = torch.rand(num, generator=generator) * (img_h - h)
    return torch.stack([torch.zeros(num), x1, y1, x1 + w, y1 + h], dim=1)  # (N, 5)


def make_features(sizes: Sizes, device, requires_grad: bool, clips: int = 1) -> tuple:
    """Slow and fast features, ``(clips, C_s, T_s, H, W)`` and ``(clips, C_f, T_f, H, W)``."""
    pathways = ((sizes.slow_channels, sizes.slow_frames), (sizes.fast_channels, sizes.fast_frames))
    shape = (sizes.feat_h, sizes.feat_w)
    features = (torch.randn(clips, c, t, *shape, device=device) for c, t in pathways)
    return tuple(feat.requires_grad_(requires_grad) for feat in features)


def timed(clock, device, fn, *args) -> float:
    """Seconds of ``fn(*args)`` on ``clock`` (CUDA synchronised)."""
    synchronise = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    synchronise()
    start = clock()
    fn(*args)
    synchronise()
    return clock() - start


def benchmark_heads(args, device) -> List[Dict]:
    sizes, generator = args.sizes, torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    heads = {kind: build_roi_head(kind, sizes).to(device) for kind in args.heads}
    rois = {n: random_rois(n, sizes, generator) for n in args.persons}
    features = {grad: make_features(sizes, device, grad) for grad in (False, True)}
    cases = {}  # (kind, N) -> (clips, rois, image metas, features without and with gradients)
    for kind, n in ((k, n) for k in args.heads for n in args.persons):
        if kind == 'acrn' and n > args.acrn_max_persons:
            continue
        clips, case_rois, feats = 1, rois[n].clone(), features
        if kind == SPREAD:  # the same boxes, SPREAD_PER_CLIP on each clip
            clips = -(-n // SPREAD_PER_CLIP)
            case_rois[:, 0] = torch.div(torch.arange(n), SPREAD_PER_CLIP, rounding_mode='floor')
            feats = {grad: make_features(sizes, device, grad, clips) for grad in (False, True)}
        metas = [dict(img_shape=(sizes.img_h, sizes.img_w))] * clips
        cases[(kind, n)] = (clips, case_rois.to(device), metas, feats)

    def run(kind, n, training):
        _, case_rois, metas, feats = cases[(kind, n)]
        heads[kind].train(training)
        if training:
            heads[kind].zero_grad(set_to_none=True)
        with torch.set_grad_enabled(training):
            logits = forward(kind, heads[kind], feats[training], case_rois, metas)
        if training:
            logits.float().sum().backward()

    for kind, n in cases:  # warm-up (allocator, kernels), not timed
        for training in (False, True) if n == min(args.persons) else ():
            run(kind, n, training)
    repeats = {kind: args.acrn_repeats if kind == 'acrn' else args.repeats for kind in heads}
    runs = sum(repeats[kind] for kind, _ in cases)
    print(f'timing {len(cases)} cases, {runs} runs (interleaved)')
    progress, times = ProgressBar(runs), {case: ([], []) for case in cases}
    for rep in range(max(repeats.values())):
        for kind, n in cases:
            if rep < repeats[kind]:
                for training in (False, True):
                    seconds = timed(CLOCKS[args.clock], device, run, kind, n, training)
                    times[(kind, n)][training].append(seconds)
                progress.update()
    print()
    rows = []
    for (kind, n), (clips, case_rois, metas, feats) in cases.items():
        head = heads[kind]
        fwd, fwdbwd = (statistics.median(seconds) * 1e3 for seconds in times[(kind, n)])
        run_on = partial(forward, kind, head, rois=case_rois, metas=metas)
        cost = training_forward_cost(head, partial(run_on, feats[True]), feats[True])
        inference = inference_macs(head, partial(run_on, feats[False]))
        module = head.bbox_roi_extractor if kind == 'pcca-extractor' else head
        tokens = head.bbox_roi_extractor.num_context_tokens if kind in PCCA_KINDS else 0
        fold = count_fold_macs(channels_of(sizes), tokens, sizes.embed_dims)
        inference_analytic = analytic_macs(kind, head, sizes, n, clips, False)
        rows.append(
            dict(
                head=kind,
                persons=n,
                fwd_ms=fwd,
                fwd_ms_per_person=fwd / n,
                fwdbwd_ms=fwdbwd,
                fwdbwd_ms_per_person=fwdbwd / n,
                saved_mib_per_person=cost.saved_bytes / n / MIB,
                head_saved_mib_per_person=cost.head_saved_bytes / n / MIB,
                params_m=sum(p.numel() for p in module.parameters()) / 1e6,
                gmacs_per_person_analytic=analytic_macs(kind, head, sizes, n, clips, True) / 1e9,
                gmacs_per_person_counted=cost.macs / n / 1e9,
                inference_gmacs_per_person_analytic=inference_analytic / 1e9,
                inference_gmacs_per_person_counted=inference / n / 1e9,
                fold_gmacs=fold / 1e9 if PCCA_IMPLS.get(kind) == 'factored' else 0,
                repeats=len(times[(kind, n)][0]),
            )
        )
    return rows


def detector_share(args, device) -> Dict:
    """Share of the PCCA head in a SlowFast-R50 detector's forward time (paper sizes)."""
    backbone_cfg = Config.fromfile(PCCA_CONFIG).model.backbone  # res5 stride 1, dilation 2
    backbone_cfg.type = 'ResNet3dSlowFast'
    backbone_cfg.slow_pathway.depth = backbone_cfg.fast_pathway.depth = DETECTOR_DEPTH
    backbone = pcca_plugin.build_registered(ACTION_MODELS, backbone_cfg).to(device).eval()
    height, width = args.clip_size
    sizes = PAPER_SIZES._replace(img_h=height, img_w=width)
    roi_head = build_roi_head('pcca', sizes).to(device).eval()
    clip = torch.randn(1, 3, args.clip_frames, height, width, device=device)
    rois = random_rois(args.detector_persons, sizes, torch.Generator().manual_seed(1))
    metas, backbone_times, head_times = [dict(img_shape=(height, width))], [], []
    with torch.no_grad():
        feat = backbone(clip)
        head = partial(forward, 'pcca', roi_head, feat, rois.to(device), metas)
        head()  # warm-up
        for _ in range(args.detector_repeats):
            backbone_times.append(timed(CLOCKS[args.clock], device, backbone, clip))
            head_times.append(timed(CLOCKS[args.clock], device, head))
    backbone_t, head_t = statistics.median(backbone_times), statistics.median(head_times)
    return dict(
        clip=f'{args.clip_frames}x{height}x{width}',
        persons=args.detector_persons,
        feature=tuple(feat[0].shape[-2:]),
        backbone_ms=backbone_t * 1e3,
        head_ms=head_t * 1e3,
        head_share=head_t / (backbone_t + head_t),
    )


def ratio_lines(rows: List[Dict]) -> List[str]:
    """The ratios the bars are read from, at N = 32 (``--quick``: its largest N)."""
    by = {(r['head'], r['persons']): r for r in rows}
    persons = {r['persons'] for r in rows}
    n = BAR_PERSONS if BAR_PERSONS in persons else max(persons)
    at_n = {kind: row for (kind, m), row in by.items() if m == n}
    lines = ['| ratio | value |', '|---|---|']

    def add(label, value, digits=4):
        lines.append(f'| {label} | {value:.{digits}f} |')

    def per_person(kind, mode='fwdbwd'):
        return at_n[kind][f'{mode}_ms_per_person']

    for kind in ('pcca', SPREAD, 'pcca-standard'):
        if {kind, 'acrn'} <= at_n.keys():
            bar = ' (bar <= 0.01)' if kind == 'pcca' else ''
            ratios = {mode: per_person(kind, mode) / per_person('acrn', mode) for mode in MODES}
            add(f'{kind} / acrn fwd+bwd per person, N={n}{bar}', ratios['fwdbwd'])
            add(f'{kind} / acrn fwd per person, N={n}', ratios['fwd'])
    if {'pcca', 'pcca-extractor', 'acrn'} <= at_n.keys():
        extractor, acrn = per_person('pcca-extractor'), per_person('acrn')
        add(f'pcca-extractor alone / acrn fwd+bwd per person, N={n}', extractor / acrn)
        head_alone = (per_person('pcca') - extractor) / acrn
        add(f'(pcca - pcca-extractor) / acrn fwd+bwd per person, N={n}: the head alone', head_alone)
    if {'pcca', 'pcca-standard'} <= at_n.keys():
        bar = ' (bar <= 0.2)'
        for key, label in (
            ('gmacs_per_person_analytic', 'MACs per person (training)'),
            ('inference_gmacs_per_person_analytic', 'MACs per person (inference, cached fold)'),
            ('fwd_ms_per_person', f'fwd time per person, N={n}'),
            ('fwdbwd_ms_per_person', f'fwd+bwd time per person, N={n}'),
            ('saved_mib_per_person', f'saved activations per person (extractor+head), N={n}'),
            ('head_saved_mib_per_person', f'saved activations per person (head), N={n}' + bar),
        ):
            add(f'pcca / pcca-standard {label}', at_n['pcca'][key] / at_n['pcca-standard'][key], 3)
    if {'pcca', 'linear'} <= at_n.keys():
        ratio = at_n['pcca']['fwdbwd_ms'] / at_n['linear']['fwdbwd_ms']
        add(f'pcca / linear fwd+bwd, N={n}', ratio, 2)
    for kind in (k for k in HEADS if (k, 128) in by and k in at_n):
        for mode in MODES:
            ratio = by[(kind, 128)][f'{mode}_ms'] / at_n[kind][f'{mode}_ms']
            add(f'{kind} {mode} time N=128 / N={n}', ratio, 2)
    return lines


def to_markdown(rows: List[Dict], share: Dict, args, device) -> str:
    sizes = args.sizes
    quick = ' --quick: tiny sizes, to check that the tool runs; bars apply at the paper sizes.'
    lines = [
        f'Device: {device}, {torch.get_num_threads()} torch thread(s), clock: {args.clock} time. '
        f'C = {channels_of(sizes)}, feature map {sizes.feat_h}x{sizes.feat_w} (slow '
        f'T={sizes.slow_frames}, fast T={sizes.fast_frames}), PCCA D = {sizes.embed_dims} with '
        f'{sizes.num_heads} heads, {sizes.num_classes} classes; medians (repeats in the last '
        'column).' + (quick if sizes == QUICK_SIZES else ''),
        '',
        '| ' + ' | '.join(COLUMNS) + ' |',
        '|' + '---|' * len(COLUMNS),
    ]
    for row in rows:
        cells = (fmt.format(value) for fmt, value in zip(CELL_FORMATS, row.values()))
        lines.append('| ' + ' | '.join(cells) + ' |')
    lines += [''] + ratio_lines(rows)
    if share:
        height, width = share['feature']
        lines += [
            '',
            'Whole detector (SlowFast-R50 8x8, res5 stride 1, random weights), clip '
            f'{share["clip"]}, {share["persons"]} persons, feature map {height}x{width}: '
            f'backbone {share["backbone_ms"]:.0f} ms, PCCA head {share["head_ms"]:.1f} ms, '
            f'head share of the forward {100 * share["head_share"]:.1f}%.',
        ]
    return '\n'.join(lines) + '\n'


def parse_args(argv: Sequence[str] = None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add = parser.add_argument
    add('--heads', nargs='+', choices=HEADS, default=list(HEADS))
    add('--persons', nargs='+', type=int, default=None, help='default 8 32 128')
    add('--repeats', type=int, default=None, help='timed runs per case (5)')
    add('--acrn-repeats', type=int, default=None, help='timed runs per ACRN case (3)')
    add('--quick', action='store_true', help='tiny sizes, N = 2 and 4, one run, no detector')
    add('--clock', choices=sorted(CLOCKS), default=None, help='default: cpu on CPU, wall on GPU')
    add('--acrn-max-persons', type=int, default=None, help='default: 32 on CPU, no limit on GPU')
    add('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    add('--threads', type=int, default=None, help='torch threads (default 1 with the cpu clock)')
    add('--skip-detector', action='store_true')
    add('--clip-frames', type=int, default=32)
    add('--clip-size', nargs=2, type=int, default=[PAPER_SIZES.img_h, PAPER_SIZES.img_w])
    add('--detector-persons', type=int, default=8)
    add('--detector-repeats', type=int, default=3)
    add('--out', default=None, help='write the markdown table here (and a .json beside it)')
    args = add_debug_argument(parser).parse_args(argv)
    defaults = dict(persons=list(PERSONS), repeats=5, acrn_repeats=3)
    if args.quick:
        defaults = dict(persons=[2, 4], repeats=1, acrn_repeats=1)
    for key, value in defaults.items():
        setattr(args, key, value if getattr(args, key) is None else getattr(args, key))
    args.sizes = QUICK_SIZES if args.quick else PAPER_SIZES
    args.skip_detector = args.skip_detector or args.quick
    on_gpu = args.device.startswith('cuda')
    args.clock = args.clock or ('wall' if on_gpu else 'cpu')
    if args.threads is None and args.clock == 'cpu':
        args.threads = 1
    if args.acrn_max_persons is None:
        args.acrn_max_persons = max(args.persons) if on_gpu or args.quick else BAR_PERSONS
    return args


def main(argv: Sequence[str] = None) -> str:
    args = parse_args(argv)
    pcca_plugin.register_all_modules()
    if args.threads:
        torch.set_num_threads(args.threads)
    device, start = torch.device(args.device), time.perf_counter()
    rows = benchmark_heads(args, device)
    share = {} if args.skip_detector else detector_share(args, device)
    text = to_markdown(rows, share, args, device)
    text += f'\nTotal benchmark wall time: {time.perf_counter() - start:.0f} s.\n'
    print(text)
    if args.out:  # the table and a .json beside it, each written whole
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        summary = json.dumps(dict(rows=rows, detector=share, sizes=args.sizes._asdict()), indent=1)
        for path, content in ((args.out, text), (os.path.splitext(args.out)[0] + '.json', summary)):
            with open(f'{path}.tmp', 'w') as f:
                f.write(content)
            os.replace(f'{path}.tmp', path)
    return text


if __name__ == '__main__':
    run_cli(main)
