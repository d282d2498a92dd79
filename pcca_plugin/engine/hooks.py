"""Hooks: decoupled (two-phase) training, frozen modules, and a progress bar for long runs.

Phase 2 of the PCCA paper (section 2.3, after Kang et al., ICLR 2020, "classifier
re-training"): load the phase-1 model, freeze every parameter except the final
classifier and re-train the classifier with class-balanced sampling.
Freezing means two things here:

* ``requires_grad = False`` on every parameter outside the classifier, so the
  optimizer never updates them (no gradient, hence no momentum or weight decay);
* every module outside the classifier stays in **eval mode**, so BatchNorm keeps
  its running statistics and dropout is off. mmengine's train loops call
  ``model.train()`` at the start of every epoch (after the ``before_train_epoch``
  hooks), so the hook re-applies the modes before every training iteration.
"""

import sys
import time
from typing import List, Optional, Sequence, Tuple

import torch.nn as nn
from mmaction.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch.nn.parallel import DistributedDataParallel

#: mmaction2's ``BBoxHeadAVA`` classifier inside ``FastRCNN``.
DEFAULT_CLASSIFIER_PATH = 'roi_head.bbox_head.fc_cls'


def find_classifier(model: nn.Module, path: str) -> nn.Module:
    """The submodule at dotted ``path``; raise naming the Linear layers that do exist."""
    try:
        return model.get_submodule(path)
    except AttributeError as exc:
        linears = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
        raise AttributeError(
            f'{type(model).__name__} has no module {path!r} to keep trainable ({exc}). Set '
            f'FreezeAllButClassifierHook(classifier_path=...) to one of its Linear layers: '
            f'{linears}'
        ) from exc


def freeze_all_but(model: nn.Module, path: str) -> Tuple[int, int]:
    """Freeze every parameter of ``model`` except those under ``path``; set the modes.

    Returns:
        ``(trainable, total)`` parameter counts (numbers of scalars).
    """
    classifier = find_classifier(model, path)
    keep = {id(p) for p in classifier.parameters()}
    if not keep:
        raise ValueError(f'module {path!r} has no parameters to train')
    for parameter in model.parameters():
        parameter.requires_grad_(id(parameter) in keep)
    apply_frozen_modes(model, classifier)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside a DDP (or other mmengine) wrapper; the model itself otherwise."""
    return model.module if is_model_wrapper(model) else model


def check_ddp_allows_freezing(model: nn.Module, hook: str) -> None:
    """Refuse to freeze inside a DDP wrapper that would wait for the frozen gradients.

    The Runner wraps the model before any hook runs, so DDP registered every
    parameter; without ``find_unused_parameters`` its second iteration fails.
    """
    if isinstance(model, DistributedDataParallel) and not model.find_unused_parameters:
        raise RuntimeError(
            f'{hook} freezes parameters of a model that DistributedDataParallel wrapped with '
            "find_unused_parameters=False; set model_wrapper_cfg=dict(type='"
            "MMDistributedDataParallel', find_unused_parameters=True) in the config "
            '(tools/train.py does it for you)'
        )


def apply_frozen_modes(model: nn.Module, classifier: nn.Module) -> None:
    """Eval mode for the whole model, train mode for the classifier subtree."""
    model.eval()
    classifier.train()


@HOOKS.register_module()
class FreezeAllButClassifierHook(Hook):
    """Train only the final classifier; keep everything else frozen and in eval mode.

    Args:
        classifier_path: dotted path of the classifier inside the model
            (unwrapped from DDP), default mmaction2's ``BBoxHeadAVA.fc_cls``.
    """

    priority = 'VERY_HIGH'

    def __init__(self, classifier_path: str = DEFAULT_CLASSIFIER_PATH) -> None:
        self.classifier_path = classifier_path
        self._classifier: Optional[nn.Module] = None

    def before_train(self, runner) -> None:
        """Freeze (after ``load_from`` has been applied) and log the trainable count."""
        check_ddp_allows_freezing(runner.model, type(self).__name__)
        model = unwrap_model(runner.model)
        trainable, total = freeze_all_but(model, self.classifier_path)
        self._classifier = model.get_submodule(self.classifier_path)
        runner.logger.info(
            f'FreezeAllButClassifierHook: {trainable} of {total} parameters trainable '
            f'({self.classifier_path}); all other modules frozen in eval mode'
        )

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        """Restore the frozen modes.

        mmengine's ``EpochBasedTrainLoop.run_epoch`` calls ``model.train()`` *after*
        ``before_train_epoch``, and validation leaves the model in eval mode, so the
        modes are set again right before every iteration.
        """
        apply_frozen_modes(unwrap_model(runner.model), self._classifier)


@HOOKS.register_module()
class FreezeModulesHook(Hook):
    """Keep some submodules fixed while the rest of the model trains.

    The listed modules get ``requires_grad = False`` (so no gradient flows into
    them and, for a backbone, no backward pass runs through it) and stay in eval
    mode (BatchNorm keeps the running statistics of pretraining). The toy demo
    uses it to keep its pretrained tiny backbone fixed while a RoI head learns,
    so that two heads are compared on the same features (``docs/results.md``).

    Args:
        modules: dotted paths inside the model (unwrapped from DDP), e.g.
            ``('backbone',)``.
    """

    priority = 'VERY_HIGH'

    def __init__(self, modules: Sequence[str] = ('backbone',)) -> None:
        if isinstance(modules, str) or not modules:
            raise ValueError(
                f'FreezeModulesHook(modules={modules!r}): give a non-empty list of dotted '
                "module paths, e.g. modules=['backbone']"
            )
        self.modules = tuple(modules)
        self._frozen: List[nn.Module] = []

    def before_train(self, runner) -> None:
        """Freeze (after ``load_from`` has been applied) and log what is frozen."""
        check_ddp_allows_freezing(runner.model, type(self).__name__)
        model = unwrap_model(runner.model)
        self._frozen = []
        for path in self.modules:
            try:
                module = model.get_submodule(path)
            except AttributeError as exc:
                children = [name for name, _ in model.named_children()]
                raise AttributeError(
                    f'FreezeModulesHook: {type(model).__name__} has no module {path!r} '
                    f'({exc}); its top-level modules are {children}'
                ) from exc
            module.requires_grad_(False)
            module.eval()
            self._frozen.append(module)
        frozen = sum(p.numel() for m in self._frozen for p in m.parameters())
        total = sum(p.numel() for p in model.parameters())
        runner.logger.info(
            f'FreezeModulesHook: {frozen} of {total} parameters frozen in eval mode '
            f'({", ".join(self.modules)})'
        )

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        """Back to eval mode (mmengine calls ``model.train()`` at every epoch start)."""
        for module in self._frozen:
            module.eval()


#: Without a terminal, the progress bar prints one line per this fraction of the work.
NON_TTY_STEP = 0.1


class _Progress:
    """One progress bar: redrawn in place on a terminal, a line per 10% otherwise."""

    def __init__(self, title: str, total: int, stream, bar_width: int) -> None:
        self.title = title
        self.total = max(total, 0)
        self.stream = stream
        self.bar_width = bar_width
        self.done = 0
        self.start = time.time()
        self.next_line = NON_TTY_STEP
        self.interactive = bool(getattr(stream, 'isatty', lambda: False)())

    def render(self) -> str:
        fraction = self.done / self.total if self.total else 1.0
        elapsed = time.time() - self.start
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else float('nan')
        filled = int(round(self.bar_width * fraction))
        bar = '#' * filled + '-' * (self.bar_width - filled)
        return (
            f'{self.title} [{bar}] {self.done}/{self.total} ({100 * fraction:3.0f}%) '
            f'elapsed {elapsed:4.0f} s, ETA {eta:4.0f} s'
        )

    def update(self, steps: int = 1) -> None:
        self.done = min(self.done + steps, self.total)
        if self.interactive:
            self.stream.write('\r' + self.render())
            self.stream.flush()
        elif self.total and self.done / self.total >= self.next_line - 1e-9:
            self.stream.write(self.render() + '\n')
            self.stream.flush()
            while self.next_line <= self.done / self.total + 1e-9:
                self.next_line += NON_TTY_STEP

    def close(self) -> None:
        if self.interactive:
            self.stream.write('\n')
            self.stream.flush()


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """A progress bar with elapsed time and ETA over training and test iterations.

    mmengine's ``LoggerHook`` prints a line every ``interval`` iterations; this
    hook draws one bar per run instead (in place on a terminal; a line per 10%
    of the work in a log file), so a long stage shows how far it is. A resumed
    training counts only the iterations still to run.

    Args:
        title: text before the bar (e.g. the stage name).
        bar_width: characters of the bar.
        stream: where to draw (default ``sys.stdout``).
    """

    priority = 'BELOW_NORMAL'

    def __init__(self, title: str = '', bar_width: int = 30, stream=None) -> None:
        self.title = title
        self.bar_width = bar_width
        self.stream = stream
        self._bar: Optional[_Progress] = None

    def _open(self, phase: str, total: int) -> None:
        title = f'{self.title} {phase}'.strip()
        self._bar = _Progress(title, total, self.stream or sys.stdout, self.bar_width)

    def _step(self) -> None:
        if self._bar is not None:
            self._bar.update()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def before_train(self, runner) -> None:
        self._open('train', runner.max_iters - runner.iter)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._step()

    def after_train(self, runner) -> None:
        self._close()

    def before_test_epoch(self, runner) -> None:
        self._open('test', len(runner.test_dataloader))

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._step()

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._close()
