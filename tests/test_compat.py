"""Each trap of the pinned stack is fixed by pcca_plugin.compat, on plain PyPI installs.

The last test builds and runs the stock mmaction2 MultiSports SlowFast detector on CPU
with the plugin imported (the drn fix makes ``mmaction.models`` importable).
"""

import json
import os
import os.path as osp
import pickle
import pickletools
import re
import subprocess
import sys
import textwrap
import types
import zipfile

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.structures import InstanceData
from torch import nn

from pcca_plugin import compat
from pcca_plugin.testing.malicious_pickles import Call, run_unsafely

#: Python source run first in a fresh interpreter: the ``importlib_metadata`` backport
#: cannot be found, as in a bare environment.
HIDE_BACKPORT = """
import importlib.abc, sys
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == 'importlib_metadata':
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, Hide())
"""


def run_python(code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, '-c', textwrap.dedent(code)], capture_output=True, text=True, cwd=cwd
    )


def test_mmaction_models_import_after_plugin_and_drn_placeholder_explains():
    import mmaction.models  # noqa: F401  (fails on the 1.2.0 wheel without the fix)
    from mmaction.registry import MODELS

    drn = MODELS.get('DRN')
    with pytest.raises(ImportError, match='not part of the mmaction2 1.2.0 wheel'):
        drn()


def test_mmaction_models_import_fails_without_plugin(tmp_path):
    """Documents the trap: without pcca_plugin the plain wheel cannot import."""
    result = run_python('import mmaction.models', tmp_path)
    assert result.returncode != 0
    assert 'drn' in result.stderr


def test_importlib_metadata_alias_when_backport_missing(tmp_path):
    result = run_python(
        HIDE_BACKPORT
        + textwrap.dedent("""
        import importlib.metadata
        import pcca_plugin  # applies the fix on import
        assert sys.modules['importlib_metadata'] is importlib.metadata
        assert 'fix_mmaction_importlib_metadata' in pcca_plugin.compat.apply_all()
        import mmaction.utils.dependency  # does `from importlib_metadata import ...`
        print('ok')
        """),
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'ok'


def test_apply_all_is_idempotent():
    before = len(sys.meta_path)
    compat.apply_all()
    compat.apply_all()
    assert len(sys.meta_path) == before


class TinyModel(BaseModel):
    """Smallest mmengine model: a linear layer with BN and a classification loss."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.bn = nn.BatchNorm1d(2)

    def forward(self, inputs, labels, mode='tensor'):
        logits = self.bn(self.fc(inputs))  # (B, 4) -> (B, 2)
        if mode == 'loss':
            return {'loss': nn.functional.cross_entropy(logits, labels)}
        return logits


def make_runner(work_dir, max_iters, **kwargs) -> Runner:
    """A real mmengine Runner on 16 random samples, checkpointing every 2 iterations."""
    generator = torch.Generator().manual_seed(0)
    dataset = [
        dict(inputs=torch.randn(4, generator=generator), labels=torch.tensor(i % 2))
        for i in range(16)
    ]
    torch.manual_seed(0)  # same initial weights in every runner
    model = TinyModel()
    return Runner(
        model=model,
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=dataset,
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=4,
            collate_fn=dict(type='default_collate'),
        ),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=dict(type='MultiStepLR', by_epoch=False, milestones=[3], begin=0, end=4),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False)),
        randomness=dict(seed=0),
        default_scope='mmengine',
        **kwargs,
    )


def test_runner_save_resume_and_load_from_under_weights_only_default(tmp_path):
    first = make_runner(tmp_path / 'a', max_iters=2)
    first.train()
    checkpoint = tmp_path / 'a' / 'iter_2.pth'
    assert checkpoint.is_file()

    # torch's own default (weights_only=True) reads mmengine's checkpoint.
    state = torch.load(checkpoint)
    assert 'message_hub' in state and state['meta']['iter'] == 2

    resumed = make_runner(tmp_path / 'a', max_iters=4, resume=True)
    resumed.train()
    assert resumed.iter == 4
    # Resuming restored weights, optimizer, scheduler and data order: it ends
    # exactly where an uninterrupted 4-iteration run ends.
    uninterrupted = make_runner(tmp_path / 'c', max_iters=4)
    uninterrupted.train()
    for name, value in uninterrupted.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value, msg=name)

    loaded = make_runner(tmp_path / 'b', max_iters=1, load_from=str(checkpoint))
    loaded.train()
    assert loaded.iter == 1  # load_from restores weights only, not the iteration


def test_checkpoint_needs_the_allow_list(tmp_path):
    """Without pcca_plugin, torch >= 2.6 refuses the same checkpoint: the fix is real."""
    runner = make_runner(tmp_path, max_iters=2)
    runner.train()
    result = run_python(
        f"""
        import torch
        torch.load({str(tmp_path / 'iter_2.pth')!r})
        """,
        tmp_path,
    )
    assert result.returncode != 0
    assert 'weights_only' in result.stderr


# --- every fix is idempotent on its own, without apply_all's guard ------------------------


def global_name(entry) -> str:
    """The name under which torch allow-lists an ``add_safe_globals`` entry."""
    return entry[1] if isinstance(entry, tuple) else f'{entry.__module__}.{entry.__qualname__}'


def test_each_fix_applied_twice_without_the_guard_leaves_the_same_state(tmp_path):
    """In a fresh interpreter, call every fix twice by hand, from the state before any fix.

    ``import pcca_plugin`` applies the two import fixes; the test undoes them (the
    finder taken out of ``sys.meta_path``, the alias out of ``sys.modules``) before
    it starts, and the ``importlib_metadata`` backport is hidden so that its fix has
    work to do.
    """
    result = run_python(
        HIDE_BACKPORT
        + textwrap.dedent("""
        import json
        from pcca_plugin import compat
        # Back to the state before the import fixes.
        sys.meta_path[:] = [f for f in sys.meta_path if type(f).__module__ != compat.__name__]
        sys.modules.pop('importlib_metadata')
        import torch.serialization as serialization

        def name(entry):
            if isinstance(entry, tuple):
                return entry[1]
            return f'{entry.__module__}.{entry.__qualname__}'

        def state():
            return dict(
                meta_path=[type(f).__name__ for f in sys.meta_path],
                importlib_metadata=repr(sys.modules.get('importlib_metadata')),
                safe_globals=sorted(map(name, serialization.get_safe_globals())),
            )

        report = dict(initial=state(), fixes={})
        for fix in (compat.fix_mmaction_missing_drn, compat.fix_mmaction_importlib_metadata,
                    compat.fix_torch_weights_only_checkpoints):
            first = fix()
            after_first = state()
            second = fix()
            report['fixes'][fix.__name__] = dict(
                returned=[first, second], after_first=after_first, after_second=state())
        print(json.dumps(report))
        """),
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    initial = report['initial']
    assert '_DRNStubFinder' not in initial['meta_path']
    for name, fix in report['fixes'].items():
        assert fix['returned'] == [True, False], name  # the second call changes nothing
        assert fix['after_second'] == fix['after_first'], name
    final = report['fixes']['fix_torch_weights_only_checkpoints']['after_second']
    assert final['meta_path'][-1] == '_DRNStubFinder'  # the finder of last resort, once
    assert final['meta_path'].count('_DRNStubFinder') == 1
    assert "module 'importlib.metadata'" in final['importlib_metadata']
    safe = final['safe_globals']
    assert len(safe) == len(set(safe)), 'a global is allow-listed twice'
    added = sorted(set(safe) - set(initial['safe_globals']))
    assert added == sorted(map(global_name, compat.mmengine_checkpoint_safe_globals()))


# --- the weights_only allow-list: exactly what checkpoints hold, nothing that runs code -----


def other_numpy_names(names) -> set:
    """The allowed names of the numpy major version that is not installed."""
    absent = 'numpy._core.' if np.__version__.startswith('1.') else 'numpy.core.'
    return {name for name in names if name.startswith(absent)}


def unsafe_globals_without_the_plugin(checkpoint: str, cwd) -> set:
    """``torch.serialization.get_unsafe_globals_in_checkpoint`` in a fresh interpreter,
    where nothing is allow-listed beyond torch's defaults."""
    result = run_python(
        f"""
        import json, torch
        print(json.dumps(torch.serialization.get_unsafe_globals_in_checkpoint({checkpoint!r})))
        """,
        cwd,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout))


def named_globals_in_checkpoint(checkpoint: str) -> set:
    """The GLOBAL names of a checkpoint's pickle (torch.save writes protocol 2)."""
    with zipfile.ZipFile(checkpoint) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith('/data.pkl')))
    return {arg.replace(' ', '.') for op, arg, _ in pickletools.genops(data) if op.name == 'GLOBAL'}


def dtype_classes_held(obj, found=None) -> set:
    """Classes of the dtypes of every numpy array and scalar inside ``obj``."""
    found = set() if found is None else found
    if isinstance(obj, (np.ndarray, np.generic)):
        found.add(type(obj.dtype))
    elif isinstance(obj, dict):
        for value in obj.values():
            dtype_classes_held(value, found)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            dtype_classes_held(value, found)
    elif hasattr(obj, '__dict__'):
        dtype_classes_held(vars(obj), found)
    return found


def test_allow_list_is_exactly_what_a_real_checkpoint_needs(tmp_path):
    """A real Runner checkpoint names these globals beyond torch's defaults, and no others;
    its dtypes are numeric, and only numeric dtype classes are allowed (no ObjectDType)."""
    runner = make_runner(tmp_path, max_iters=2)
    runner.train()
    checkpoint = str(tmp_path / 'iter_2.pth')
    allowed = compat.mmengine_checkpoint_safe_globals()
    dtype_classes = set(compat.numeric_dtype_classes())
    named = {global_name(entry) for entry in allowed if entry not in dtype_classes}
    assert unsafe_globals_without_the_plugin(checkpoint, tmp_path) == named - other_numpy_names(
        named
    )
    held = dtype_classes_held(torch.load(checkpoint))
    assert held and held <= dtype_classes, held
    assert {np.dtype(cls.type).kind for cls in dtype_classes} == set('biuf')
    assert np.dtypes.ObjectDType not in allowed and np.dtypes.StrDType not in allowed
    # An object array or a pickled dtype class is refused.
    for name, value in (
        ('object_array', np.array([1, 'a'], dtype=object)),
        ('dtype_class', np.dtypes.ObjectDType),
    ):
        path = str(tmp_path / f'{name}.pth')
        torch.save({'state_dict': {}, 'value': value}, path)
        with pytest.raises(pickle.UnpicklingError, match='ObjectDType'):
            torch.load(path)


def test_a_checkpoint_written_under_numpy1_loads(tmp_path):
    """The numpy 1.x names (``numpy.core.multiarray``) are allowed too: re-save a real
    checkpoint with numpy 1.x's pickling (the project's numpy1 writer), then resume from it."""
    from pcca_plugin.utils import pickle_io

    runner = make_runner(tmp_path, max_iters=2)
    runner.train()
    state = torch.load(str(tmp_path / 'iter_2.pth'))
    state['state_dict']['fc.weight'] += 1.0  # so that a resumed model is recognisable
    numpy1_pickle = types.ModuleType('numpy1_pickle')
    numpy1_pickle.Pickler = pickle_io._Numpy1Pickler
    resaved = str(tmp_path / 'numpy1' / 'iter_2.pth')
    os.makedirs(os.path.dirname(resaved))
    torch.save(state, resaved, pickle_module=numpy1_pickle)
    names = named_globals_in_checkpoint(resaved)
    assert 'numpy.core.multiarray._reconstruct' in names
    assert not any('numpy._core' in name for name in names)
    again = torch.load(resaved)
    for key, value in state['message_hub']['log_scalars'].items():
        np.testing.assert_array_equal(
            again['message_hub']['log_scalars'][key]._log_history,
            value._log_history,
            err_msg=key,
        )
    resumed = make_runner(tmp_path / 'numpy1', max_iters=2, resume=True, load_from=resaved)
    resumed.train()  # nothing left to train: the model is the checkpoint's
    assert resumed.iter == 2
    torch.testing.assert_close(resumed.model.fc.weight, state['state_dict']['fc.weight'])


def checkpoint_payloads(marker: str) -> dict:
    """name -> (object to torch.save next to real weights, text the refusal names)."""
    from mmengine.logging.history_buffer import HistoryBuffer

    code = f"open({marker!r}, 'w').close()"
    # getattr(getattr(getattr(HistoryBuffer, 'min'), '__globals__')['__builtins__'], ...)['eval']
    statistic = Call(getattr, HistoryBuffer, 'min')
    module_globals = Call(getattr, statistic, '__globals__')
    builtins_dict = Call(Call(getattr, module_globals, '__getitem__'), '__builtins__')
    evaluate = Call(Call(getattr, builtins_dict, '__getitem__'), 'eval')
    return {
        'os.system': (Call(os.system, f'touch {marker}'), 'posix'),
        'builtins.eval': (Call(eval, code), 'eval'),
        # torch.save writes protocol 2, where Python names the module of Popen 'commands'.
        'subprocess.Popen': (Call(subprocess.Popen, ['touch', marker]), 'commands.Popen'),
        'getattr chain from an allowed class': (Call(evaluate, code), 'refusing getattr'),
        'getattr on an allowed class': (
            Call(Call(getattr, np.ndarray, 'tofile'), np.zeros(1), marker),
            'refusing getattr',
        ),
    }


def test_malicious_checkpoints_are_refused_and_nothing_runs(tmp_path):
    """After ``import pcca_plugin`` (conftest), torch.load's default refuses each payload,
    and nothing of it runs; without the protection (one child process) each one runs."""
    folder = tmp_path / 'checkpoints'
    folder.mkdir()
    markers = {}
    for index, name in enumerate(sorted(checkpoint_payloads('MARKER'))):
        markers[name] = str(tmp_path / f'ran_{index}.marker')
        payload, refusal = checkpoint_payloads(markers[name])[name]
        path = str(folder / f'evil_{index}.pth')
        torch.save({'state_dict': TinyModel().state_dict(), 'meta': {'evil': payload}}, path)
        with pytest.raises(pickle.UnpicklingError, match=re.escape(refusal)):
            torch.load(path)
        assert not os.path.exists(markers[name]), f'{name}: the payload ran'
    # Control: with weights_only=False every payload runs.
    stderr = run_unsafely(
        str(folder),
        list(markers.values()),
        'import glob, torch; '
        '[torch.load(p, weights_only=False) for p in sorted(glob.glob(path + "/*.pth"))]',
    )
    for name, marker in markers.items():
        assert os.path.exists(marker), f'{name}: the payload is not live: {stderr[-800:]}'


def test_getattr_shim_resolves_only_history_buffer_statistics():
    from mmengine.logging.history_buffer import HistoryBuffer

    assert compat.history_buffer_getattr(HistoryBuffer, 'mean') == HistoryBuffer.mean
    for owner, name in (
        (HistoryBuffer, '__init__'),
        (HistoryBuffer, 'update'),
        (HistoryBuffer, '__class__'),
        (dict, 'fromkeys'),
        (os, 'system'),
    ):
        with pytest.raises(
            pickle.UnpicklingError, match=f'refusing getattr.*{re.escape(repr(name))}'
        ):
            compat.history_buffer_getattr(owner, name)


STOCK_CONFIG = (
    'detection/slowfast/slowfast_kinetics400-pretrained-r50_8xb16-4x16x1-8e_multisports-rgb.py'
)
#: Small clip so that the R50 SlowFast forward stays cheap on 2 cores: (C, T, H, W).
CLIP_SHAPE = (3, 32, 64, 64)
NUM_PROPOSALS = 2


def stock_config_path() -> str:
    import mmaction

    path = osp.join(osp.dirname(mmaction.__file__), '.mim', 'configs', STOCK_CONFIG)
    assert osp.isfile(path), f'mmaction2 config not found at {path}'
    return path


def test_stock_multisports_slowfast_forward_on_cpu():
    from mmaction.structures import ActionDataSample
    from mmaction.utils import register_all_modules
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    register_all_modules()
    cfg = Config.fromfile(stock_config_path())
    cfg.merge_from_dict(
        dict(custom_imports=dict(imports=['pcca_plugin'], allow_failed_imports=False))
    )
    cfg.model.init_cfg = None  # no download: random weights
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model).eval()

    torch.manual_seed(0)
    clip = torch.randn(1, *CLIP_SHAPE)  # (B, C, T, H, W)
    sample = ActionDataSample()
    height, width = CLIP_SHAPE[2:]
    sample.set_metainfo(dict(img_shape=(height, width)))
    sample.proposals = InstanceData(
        bboxes=torch.tensor([[4.0, 6.0, 30.0, 60.0], [20.0, 2.0, 62.0, 50.0]])
    )
    with torch.no_grad():
        results = model(clip, [sample], mode='predict')

    scores = results[0].pred_instances.scores
    assert scores.shape == (NUM_PROPOSALS, cfg.num_classes)
    assert torch.isfinite(scores).all()
    assert ((scores >= 0) & (scores <= 1)).all()  # per-class sigmoid scores
