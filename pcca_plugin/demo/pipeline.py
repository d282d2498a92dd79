"""The demo's pipeline (``make demo``): PCCA end to end on generated toy-sports data, on a CPU.

The pipeline runs once per seed (default three seeds, one process each, in
``<work-dir>/seed_<S>/``); each seed generates its own data and trains its own
models. Stages of a seed (:data:`~pcca_plugin.demo.settings.STAGES`), each
resumable (a finished stage is never recomputed; an interrupted training
resumes from its last checkpoint):

1. ``data``: generate the toy-sports dataset in MultiSports format
   (:func:`pcca_plugin.datasets.toy_sports.make_toy_sports`) and prepare it
   with the MultiSports preparation code; generate other videos for
   pretraining (seed ``S + 1000``) with clip-level labels.
2. ``pretrain``: pretrain the tiny SlowFast by clip classification on those
   videos (the toy's stand-in for the paper's Kinetics pretraining) and keep
   its backbone weights.
3. ``linear``: train the linear head (baseline) on the pretrained backbone,
   kept frozen (``configs/_base_/toy-sports_protocol.py`` says why).
4. ``pcca``: train the PCCA head on the same frozen backbone.
5. ``decoupled``: phase 2 of decoupled training from the PCCA checkpoint:
   everything frozen but the classifier, class-balanced sampling.
6. ``test_<model>``: evaluate each on every frame of the held-out videos with
   the tube-linking metric (frame-mAP@0.5, video-mAP@0.2/0.5/0.1:0.9).
7. ``report``: :func:`pcca_plugin.demo.report.write_report`.

Then :func:`run_demo` combines the seeds (:func:`pcca_plugin.demo.report.write_summary`)
and prints the paper's claims seed by seed (:func:`pcca_plugin.demo.claims.check_paper_claims`).
Every training and test goes through mmengine's ``Runner`` built from the
configs in ``configs/pcca/``, exactly the calls ``mim train mmaction`` /
``mim test mmaction`` make. The command line is ``tools/run_demo.py``.
"""

import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from pcca_plugin.datasets.toy_sports import make_toy_sports, write_clip_level_annotations
from pcca_plugin.models.checkpoint_surgery import extract_submodule_weights
from pcca_plugin.registration import register_all_modules
from pcca_plugin.utils.checkout import repo_path
from pcca_plugin.utils.cli import DEBUG_FLAG

from .claims import check_paper_claims
from .report import write_report, write_summary
from .settings import (
    CONFIG_DATA_ROOT,
    CONFIGS,
    FULL_SEEDS,
    MODEL_ROWS,
    PRETRAIN_SEED_OFFSET,
    QUICK_SEEDS,
    REQUIRED_FREE_MB,
    STAGES,
    STATE_FILE,
    TABLE_COLUMNS,
    THREADS_PER_SEED,
    DemoError,
    DemoSettings,
    config_path,
    seed_work_dir,
)

#: The command line that runs one seed in its own process (:func:`run_seeds_in_parallel`).
DEMO_SCRIPT = repo_path('tools', 'run_demo.py')
#: The flag of :data:`DEMO_SCRIPT` that runs one seed's pipeline and nothing else.
SINGLE_SEED_FLAG = '--single-seed'
#: Seconds between two looks at the running seed processes.
POLL_SECONDS = 0.5
#: Lines of a seed's output that start with this are the demo's own (echoed by the parent).
DEMO_PREFIX = '[demo] '


def check_work_dir(work_dir: str, required_mb: int = REQUIRED_FREE_MB) -> None:
    """Fail before any training when the work dir is not writable or the disk is full."""
    try:
        os.makedirs(work_dir, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=work_dir, prefix='.write_probe'):
            pass
    except OSError as exc:
        raise DemoError(
            f'{work_dir}: the work directory is not writable ({exc}). '
            'Pass --work-dir with a writable folder.'
        ) from exc
    free_mb = shutil.disk_usage(work_dir).free / 2**20
    if free_mb < required_mb:
        raise DemoError(
            f'{work_dir}: only {free_mb:.0f} MiB free on this disk; the demo '
            f'needs {required_mb} MiB. Free some space or pass --work-dir on '
            'another disk.'
        )


class StageState:
    """Which stages finished, with their outputs and timings, persisted as JSON.

    The file is rewritten atomically after every stage, so an interruption
    at any point loses at most the stage that was running.
    """

    def __init__(self, path: str, settings: DemoSettings, seed: int):
        self.path = path
        # Through JSON, so that tuples compare equal to the lists of a saved state.
        self.data = json.loads(json.dumps(dict(settings=asdict(settings), seed=seed, stages={})))
        if osp.isfile(path):
            with open(path, encoding='utf-8') as f:
                saved = json.load(f)
            if saved.get('settings') != self.data['settings'] or saved.get('seed') != seed:
                raise DemoError(
                    f'{path}: this work dir holds a demo run with other settings '
                    f'(seed {saved.get("seed")}, {saved.get("settings")}); use another '
                    '--work-dir or delete that one.'
                )
            self.data = saved

    def done(self, stage: str) -> bool:
        return stage in self.data['stages']

    def outputs(self, stage: str) -> Dict:
        return self.data['stages'][stage]['outputs']

    def finish(self, stage: str, outputs: Dict, seconds: float) -> None:
        self.data['stages'][stage] = dict(outputs=outputs, seconds=round(seconds, 1))
        tmp = self.path + '.tmp'
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(self.data, f, indent=2)
        os.replace(tmp, self.path)


def rebase_paths(node, old: str, new: str):
    """Return ``node`` with every string starting with ``old`` re-rooted at ``new``."""
    if isinstance(node, str):
        return new + node[len(old) :] if node.startswith(old) else node
    if isinstance(node, dict):
        return type(node)({key: rebase_paths(value, old, new) for key, value in node.items()})
    if isinstance(node, (list, tuple)):
        return type(node)(rebase_paths(value, old, new) for value in node)
    return node


def starts_from_pretrained(cfg) -> bool:
    """Whether a config initialises its model from a checkpoint (``model.init_cfg``)."""
    init_cfg = cfg.model.get('init_cfg')
    return init_cfg is not None and init_cfg.get('type') == 'Pretrained'


def load_demo_config(
    model: str,
    data_root: str,
    work_dir: str,
    seed: int,
    settings: DemoSettings,
    pretrained_backbone: Optional[str] = None,
):
    """The model's tiny config, pointed at the demo's data and work dir, without validation.

    Validation during training is switched off: each model is tested once,
    after training, on every frame of the held-out videos.

    Args:
        model: a key of :data:`~pcca_plugin.demo.settings.CONFIGS`.
        data_root: this seed's toy-sports folder (replaces ``data/toy_sports``).
        work_dir: the run's work dir.
        seed: the run's seed (``randomness.seed``).
        settings: the epochs and log interval.
        pretrained_backbone: this seed's pretrained backbone weights, for the
            configs that start from one (``model.init_cfg``).
    """
    from mmengine.config import Config

    cfg = Config.fromfile(config_path(model))
    cfg = Config(rebase_paths(cfg.to_dict(), CONFIG_DATA_ROOT, data_root))
    if starts_from_pretrained(cfg) and pretrained_backbone is not None:
        cfg.model.init_cfg.checkpoint = pretrained_backbone
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=seed, deterministic=False)
    epochs = settings.phase2_epochs if model == 'decoupled' else settings.phase1_epochs
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epochs, val_interval=epochs + 1)
    for scheduler in cfg.param_scheduler:
        if scheduler.get('end', 0) > epochs:
            scheduler['end'] = epochs
        if 'T_max' in scheduler:
            scheduler['T_max'] = epochs
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=1, max_keep_ckpts=1, save_last=True
    )
    # ignore_last=False: each epoch's last iteration is logged too, so that the training
    # curves (pcca_plugin.visualization.training_curves) place every logged iteration
    # exactly on the epoch axis.
    cfg.default_hooks.logger = dict(
        type='LoggerHook', interval=settings.log_interval, ignore_last=False
    )
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='ProgressBarHook', title=f'[demo] {model}')
    ]
    return cfg


def train_stage(
    model: str,
    data_root: str,
    work_dir: str,
    seed: int,
    settings: DemoSettings,
    load_from: Optional[str] = None,
    pretrained_backbone: Optional[str] = None,
) -> Dict:
    """Train one model with mmengine's Runner; resume from its last checkpoint if any.

    Args:
        model, data_root, work_dir, seed, settings: see :func:`load_demo_config`.
        load_from: weights to start from (phase 2: the phase-1 checkpoint). Used
            only for a fresh start: after an interruption the run resumes from
            its own last checkpoint instead. (mmengine resumes *from*
            ``load_from`` when both are set, which would restart phase 2 from
            the phase-1 optimizer state and epoch counter.)
        pretrained_backbone: see :func:`load_demo_config`.

    Returns:
        ``dict(checkpoint, config)``: the last epoch's checkpoint and the config used.
    """
    from mmengine.runner import Runner

    cfg = load_demo_config(model, data_root, work_dir, seed, settings, pretrained_backbone)
    if starts_from_pretrained(cfg) and pretrained_backbone is None:
        raise DemoError(
            f'{CONFIGS[model]} starts from a pretrained backbone (model.init_cfg) but the demo '
            'gave it none; the pretrain stage writes one'
        )
    cfg.resume = osp.isfile(osp.join(work_dir, 'last_checkpoint'))
    cfg.load_from = None if cfg.resume else load_from
    runner = Runner.from_cfg(cfg)
    runner.train()
    checkpoint = osp.join(work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
    if not osp.isfile(checkpoint):
        raise DemoError(f'{checkpoint}: training finished without writing its checkpoint')
    return dict(checkpoint=checkpoint, config=CONFIGS[model])


def test_stage(
    model: str, checkpoint: str, data_root: str, work_dir: str, seed: int, settings: DemoSettings
) -> Dict:
    """Evaluate a checkpoint on every frame of the held-out videos; dump detections.

    Returns:
        ``dict(metrics, frame_detections, video_detections)``: the metric's figures
        and the two dumped pickles.
    """
    from mmengine.runner import Runner

    cfg = load_demo_config(model, data_root, work_dir, seed, settings)
    frame_file = osp.join(work_dir, 'frame_detections.pkl')
    video_file = osp.join(work_dir, 'video_detections.pkl')
    cfg.test_evaluator = dict(
        cfg.test_evaluator, dump_frame_detections=frame_file, dump_video_detections=video_file
    )
    cfg.load_from = checkpoint
    cfg.model.init_cfg = None  # every weight comes from the checkpoint
    cfg.custom_hooks = [
        hook for hook in cfg.get('custom_hooks', []) if hook['type'] != 'FreezeAllButClassifierHook'
    ]
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    figures = {
        key: float(value)
        for key, value in metrics.items()
        if isinstance(value, (int, float, np.floating))
    }
    return dict(metrics=figures, frame_detections=frame_file, video_detections=video_file)


def run_stage(state: StageState, stage: str, function: Callable[[], Dict]) -> Dict:
    """Run ``function`` unless ``stage`` already finished; print its time and outputs."""
    number = f'{STAGES.index(stage) + 1}/{len(STAGES)}'
    if state.done(stage):
        print(f'[demo] stage {number} {stage}: already done, skipped ({state.path})', flush=True)
        return state.outputs(stage)
    print(f'\n[demo] ===== stage {number}: {stage} =====', flush=True)
    start = time.time()
    outputs = function()
    seconds = time.time() - start
    state.finish(stage, outputs, seconds)
    print(f'[demo] {stage}: done in {seconds:.0f} s', flush=True)
    return outputs


def run_seed(seed: int, work_dir: str, settings: DemoSettings) -> Dict:
    """The whole pipeline for one seed (data and training) in ``work_dir``; resumable.

    Registers the plugin's components first (:func:`pcca_plugin.register_all_modules`)
    and runs at :data:`~pcca_plugin.demo.settings.THREADS_PER_SEED` threads.

    Returns:
        output name -> path of this seed's report (``results.json`` etc.).
    """
    register_all_modules()
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS_PER_SEED)
    try:
        return _run_seed_stages(seed, work_dir, settings)
    finally:
        torch.set_num_threads(threads)


def _run_seed_stages(seed: int, work_dir: str, settings: DemoSettings) -> Dict:
    """The stages of :func:`run_seed`, each run unless a saved state says it finished."""
    check_work_dir(work_dir)
    state = StageState(osp.join(work_dir, STATE_FILE), settings, seed)
    data_root = osp.join(work_dir, 'data')
    begin = time.time()

    def make_data():
        summary = make_toy_sports(data_root, seed=seed, **settings.data_sizes)
        # The pretraining videos go where the clip-classifier config reads them (its
        # ``clips_root``, rebased into this seed's data root).
        pretraining_cfg = load_demo_config('clip_classifier', data_root, work_dir, seed, settings)
        pretraining_root = pretraining_cfg.clips_root
        make_toy_sports(pretraining_root, seed=seed + PRETRAIN_SEED_OFFSET, **settings.data_sizes)
        clips = write_clip_level_annotations(pretraining_root)
        return dict(data_root=data_root, gt_file=summary['gt_file'], clips=clips['ann_file'])

    def pretrain():
        pretrain_dir = osp.join(work_dir, 'clip_classifier')
        trained = train_stage('clip_classifier', data_root, pretrain_dir, seed, settings)
        backbone = osp.join(pretrain_dir, 'backbone.pth')
        extract_submodule_weights(trained['checkpoint'], backbone, prefix='backbone.')
        return dict(trained, backbone=backbone)

    data = run_stage(state, 'data', make_data)
    backbone = run_stage(state, 'pretrain', pretrain)['backbone']
    checkpoints = {}
    for model in ('linear', 'pcca', 'decoupled'):
        model_dir = osp.join(work_dir, model)
        load_from = checkpoints['pcca'] if model == 'decoupled' else None
        trained = run_stage(
            state,
            f'train_{model}',
            lambda m=model, d=model_dir, lf=load_from: train_stage(
                m, data_root, d, seed, settings, lf, pretrained_backbone=backbone
            ),
        )
        checkpoints[model] = trained['checkpoint']
    results = {}
    for model in ('linear', 'pcca', 'decoupled'):
        model_dir = osp.join(work_dir, model)
        results[model] = run_stage(
            state,
            f'test_{model}',
            lambda m=model, d=model_dir: test_stage(
                m, checkpoints[m], data_root, d, seed, settings
            ),
        )
    report = run_stage(
        state,
        'report',
        lambda: write_report(
            work_dir, data['gt_file'], results, MODEL_ROWS, TABLE_COLUMNS, data_root
        ),
    )
    print(
        f'[demo] seed {seed} finished in {time.time() - begin:.0f} s, peak memory '
        f'{peak_memory_mib():.0f} MiB (this process; stage times in {state.path})'
    )
    return report


def peak_memory_mib() -> float:
    """Peak resident memory of this process so far, in MiB (``getrusage``'s ``ru_maxrss``)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == 'darwin' else peak / 2**10  # bytes on macOS, else KiB


def seed_command(seed: int, work_dir: str, quick: bool) -> List[str]:
    """The command line of one seed's process: :data:`DEMO_SCRIPT` ``--single-seed S``.

    With ``--debug``, so that a failure leaves its traceback in the seed's log.
    """
    command = [sys.executable, DEMO_SCRIPT, SINGLE_SEED_FLAG, str(seed)]
    command += ['--work-dir', seed_work_dir(work_dir, seed), DEBUG_FLAG]
    return command + (['--quick'] if quick else [])


def run_seeds_in_parallel(seeds: Sequence[int], work_dir: str, quick: bool, jobs: int) -> None:
    """One ``run_demo.py --single-seed S`` process per seed, ``jobs`` at a time.

    Each process runs :data:`~pcca_plugin.demo.settings.THREADS_PER_SEED`
    threads (small CPU models scale better over processes than over threads,
    and a fixed count keeps a seed's figures the same however many seeds run)
    and prints its lines with a ``[seed S]`` prefix. A failure stops the others
    and names the seed's log.
    """
    threads = str(THREADS_PER_SEED)
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    pending, running, failed = list(seeds), [], []

    def start(seed):
        log_path = osp.join(seed_work_dir(work_dir, seed), 'demo.log')
        os.makedirs(osp.dirname(log_path), exist_ok=True)
        process = subprocess.Popen(
            seed_command(seed, work_dir, quick),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        log = open(log_path, 'a', encoding='utf-8')
        reader = threading.Thread(target=_relay, args=(process, log, seed), daemon=True)
        reader.start()
        return seed, process, reader, log, log_path

    try:
        while pending or running:
            while pending and len(running) < jobs:
                running.append(start(pending.pop(0)))
            for entry in list(running):
                seed, process, reader, log, log_path = entry
                if process.poll() is None:
                    continue
                reader.join()
                log.close()
                running.remove(entry)
                if process.returncode != 0:
                    failed.append((seed, log_path))
            if failed:
                break
            time.sleep(POLL_SECONDS)
    finally:
        for _, process, _, log, _ in running:  # Ctrl-C or a failed seed: stop the others
            process.terminate()
            process.wait()
            log.close()
    if failed:
        seed, log_path = failed[0]
        raise DemoError(
            f'seed {seed} failed; its output is in {log_path}. Fix the cause and run the '
            'same command again: finished stages are kept.'
        )


def _relay(process, log, seed: int) -> None:
    """Copy a seed's output to its log; echo the demo's own lines with a ``[seed S]`` prefix."""
    for line in process.stdout:
        log.write(line)
        log.flush()
        if line.startswith(DEMO_PREFIX):
            print(f'[seed {seed}] {line[len(DEMO_PREFIX) :]}', end='', flush=True)


def run_demo(
    work_dir: str,
    seeds: Optional[Sequence[int]] = None,
    jobs: Optional[int] = None,
    quick: bool = False,
) -> Dict[str, str]:
    """Every seed's pipeline, then the report over seeds and the paper's claims.

    Args:
        work_dir: where everything goes (``seed_<S>/`` per seed, the summary at the top).
        seeds: the seeds (default :data:`~pcca_plugin.demo.settings.FULL_SEEDS`;
            ``quick``: :data:`~pcca_plugin.demo.settings.QUICK_SEEDS`).
        jobs: seeds run at the same time, each in its own process (default: all);
            with one, the seeds run one after the other in this process.
        quick: less data and training (:meth:`DemoSettings.quick`); the claims are
            printed, not enforced.

    Returns:
        output name -> path of the summary report.

    Raises:
        DemoError: bad arguments, an unusable work dir, a failed seed, or (full
            demo) a claim that failed (:class:`~pcca_plugin.demo.settings.ClaimNotReproduced`).
    """
    settings = DemoSettings.quick() if quick else DemoSettings.full()
    work_dir = osp.abspath(work_dir)
    seeds = list(seeds or (QUICK_SEEDS if quick else FULL_SEEDS))
    if len(set(seeds)) != len(seeds):
        raise DemoError(f'--seeds {seeds}: each seed once, please')
    jobs = max(1, min(jobs or len(seeds), len(seeds)))
    check_work_dir(work_dir)
    begin = time.time()
    print(f'[demo] seeds {seeds}, {jobs} at a time; outputs under {work_dir}', flush=True)
    if jobs == 1:
        for seed in seeds:
            run_seed(seed, seed_work_dir(work_dir, seed), settings)
    else:
        run_seeds_in_parallel(seeds, work_dir, quick, jobs)
    seed_reports = {seed: osp.join(seed_work_dir(work_dir, seed), 'results.json') for seed in seeds}
    report = write_summary(work_dir, seed_reports, MODEL_ROWS, TABLE_COLUMNS, quick=quick)
    print(f'\n[demo] finished in {time.time() - begin:.0f} s (this run)')
    for name, path in report.items():
        print(f'[demo] {name}: {path}')
    check_paper_claims(report['results_json'], enforce=not quick)
    return report
