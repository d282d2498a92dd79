"""Registration (``pcca_plugin/registration.py`` and the package's import rules).

* ``import pcca_plugin`` changes nothing in the interpreter beyond the one
  compatibility finder, and loads no torch / OpenMMLab module;
* under ``mim train mmaction <config>``, ``custom_imports`` registers every component;
* ``register_all_modules()`` registers the same set; a heavy subpackage registers its own;
* a build that needs our components before registration says what to call.
"""

import builtins
import json
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
from mmengine.config import Config

from pcca_plugin.datasets.toy_sports import make_toy_sports, write_clip_level_annotations
from pcca_plugin.testing import repo_path

TINY_PCCA_CONFIG = 'configs/pcca/pcca_slowfast-tiny_1xb8-8x1x1-5e_toy-sports-rgb.py'
#: The toy configs read their data from this path, relative to the working directory.
CONFIG_DATA_ROOT = osp.join('data', 'toy_sports')
#: Imported by ``custom_imports`` right after pcca_plugin; writes what pcca_plugin registered.
REGISTRY_PROBE = """
import importlib, json, os
from mmengine.registry import Registry


def registered_by_plugin():
    found = set()
    for module_name in ('mmengine.registry', 'mmdet.registry', 'mmaction.registry'):
        for registry in vars(importlib.import_module(module_name)).values():
            if isinstance(registry, Registry):
                for name, obj in registry.module_dict.items():
                    if getattr(obj, '__module__', '').startswith('pcca_plugin'):
                        found.add(f'{registry.scope}.{registry.name}:{name}')
    return sorted(found)


if os.environ.get('REGISTRY_PROBE_OUT'):
    with open(os.environ['REGISTRY_PROBE_OUT'], 'w') as f:
        json.dump(registered_by_plugin(), f)
"""


def registered_after_explicit_registration(probe_dir) -> list:
    """Every component, from a fresh interpreter that registers explicitly."""
    code = (
        'import json, pcca_plugin; pcca_plugin.register_all_modules(); '
        'import registry_probe; print(json.dumps(registry_probe.registered_by_plugin()))'
    )
    env = dict(os.environ, PYTHONPATH=str(probe_dir))  # the probe; the package is installed
    result = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_mim_train_builds_plugin_components_and_trains(tmp_path, repo_root):
    make_toy_sports(str(tmp_path / CONFIG_DATA_ROOT), seed=0, num_train_videos=2, num_val_videos=2)
    work_dir = tmp_path / 'work_dir'
    mim = osp.join(osp.dirname(sys.executable), 'mim')
    # The tiny config, plus a probe imported by custom_imports right after pcca_plugin.
    probe_dir = tmp_path / 'probe'
    probe_dir.mkdir()
    (probe_dir / 'registry_probe.py').write_text(REGISTRY_PROBE)
    config = probe_dir / osp.basename(TINY_PCCA_CONFIG)
    config.write_text(
        f'_base_ = [{osp.join(repo_root, TINY_PCCA_CONFIG)!r}]\n'
        "custom_imports = dict(imports=['pcca_plugin', 'registry_probe'], "
        'allow_failed_imports=False)\n'
    )
    command = [
        mim,
        'train',
        'mmaction',
        str(config),
        '--work-dir',
        str(work_dir),
        '--cfg-options',
        'train_cfg.max_epochs=1',
        'model.init_cfg=None',  # no pretrained backbone here: a random one, frozen
        'train_cfg.val_begin=2',
        'train_dataloader.batch_size=8',
        'default_hooks.logger.interval=1',
    ]
    env = dict(
        os.environ,
        PYTHONPATH=str(probe_dir),  # the probe; the package is installed
        REGISTRY_PROBE_OUT=str(tmp_path / 'registered.json'),
    )
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    # custom_imports registered every component, as an explicit registration does.
    registered = json.loads((tmp_path / 'registered.json').read_text())
    expected = registered_after_explicit_registration(probe_dir)
    assert registered == expected
    for name in (
        'mmdet.model:PCCARoIHead',
        'mmdet.model:PCCABBoxHead',
        'mmdet.model:ContextRoIExtractor',
        'mmaction.dataset:MultiSportsDataset',
        'mmaction.metric:MultiSportsTubeMetric',
    ):
        assert name in expected, name
    # The dumped config holds the plugin's types, and training ran and checkpointed.
    config_dump = (work_dir / osp.basename(TINY_PCCA_CONFIG)).read_text()
    for registered in ('PCCARoIHead', 'ContextRoIExtractor', 'MultiSportsDataset'):
        assert registered in config_dump
    assert 'Epoch(train) [1]' in output
    assert (work_dir / 'epoch_1.pth').is_file()


CLIP_CLASSIFIER_CONFIG = (
    'configs/pcca/clip-classifier_slowfast-tiny_1xb8-8x1x1-5e_toy-sports-clips-rgb.py'
)


def test_documented_toy_chain_pretrain_extract_train(tmp_path, repo_root):
    """configs/pcca/README.md, toy-sports by hand: pretrain with mim, keep the backbone with
    tools/extract_weights.py, train PCCA with mim on it (default paths, frozen)."""
    make_toy_sports(str(tmp_path / CONFIG_DATA_ROOT), seed=0, num_train_videos=2, num_val_videos=2)
    pretraining = tmp_path / CONFIG_DATA_ROOT / 'pretraining'
    make_toy_sports(str(pretraining), seed=1000, num_train_videos=2, num_val_videos=2)
    write_clip_level_annotations(str(pretraining))
    env = dict(os.environ)
    mim = osp.join(osp.dirname(sys.executable), 'mim')

    def run(command):
        result = subprocess.run(
            command, cwd=tmp_path, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-3000:]
        return output

    one_epoch = ['--cfg-options', 'train_cfg.max_epochs=1', 'train_cfg.val_begin=2']
    run([mim, 'train', 'mmaction', osp.join(repo_root, CLIP_CLASSIFIER_CONFIG)] + one_epoch)
    pretrain_dir = tmp_path / 'work_dirs' / osp.splitext(osp.basename(CLIP_CLASSIFIER_CONFIG))[0]
    tool = osp.join(repo_root, 'tools', 'extract_weights.py')
    run(
        [
            sys.executable,
            tool,
            str(pretrain_dir / 'epoch_1.pth'),
            str(pretrain_dir / 'backbone.pth'),
        ]
    )
    output = run([mim, 'train', 'mmaction', osp.join(repo_root, TINY_PCCA_CONFIG)] + one_epoch)
    backbone = Config.fromfile(osp.join(repo_root, TINY_PCCA_CONFIG)).pretrained_backbone
    assert f'load model from: {backbone}' in output  # model.init_cfg, not just the dump
    assert 'FreezeModulesHook:' in output and 'parameters frozen' in output
    assert (
        tmp_path / 'work_dirs' / osp.splitext(osp.basename(TINY_PCCA_CONFIG))[0] / 'epoch_1.pth'
    ).is_file()


#: Top-level packages that ``import pcca_plugin`` alone must not load.
HEAVY_PACKAGES = ('torch', 'mmengine', 'mmcv', 'mmdet', 'mmaction')
#: The tiny PCCA detector's model config (mmaction2's FastRCNN with our RoI head).
TINY_PCCA_MODEL = repo_path('configs', '_base_', 'models', 'slowfast-tiny_pcca.py')


def run_fresh(code: str) -> str:
    """Run ``code`` in a fresh interpreter (this test process registered everything); its stdout."""
    result = subprocess.run(
        [sys.executable, '-c', textwrap.dedent(code)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_import_has_no_side_effects_on_the_interpreter():
    """``import pcca_plugin`` alone: the builtin import untouched, only the compat finder added,
    no heavy package loaded, nothing registered."""
    report = run_fresh(
        f"""
        import builtins, json, sys
        original_import, meta_path = builtins.__import__, list(sys.meta_path)
        import pcca_plugin
        from pcca_plugin import compat
        added = [type(f).__name__ for f in sys.meta_path if f not in meta_path]
        print(json.dumps(dict(
            same_import=builtins.__import__ is original_import,
            added_finders=added,
            heavy=sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY_PACKAGES)!r}),
            registered=pcca_plugin.all_modules_registered(),
        )))
        """
    )
    found = json.loads(report.strip().splitlines()[-1])
    assert found == dict(
        same_import=True, added_finders=['_DRNStubFinder'], heavy=[], registered=False
    )
    assert builtins.__import__.__module__ == 'builtins'  # and in this process too


def test_import_after_mmengine_registers_everything():
    """Rule 3: mmengine first (as ``custom_imports`` under a Runner), then the package."""
    run_fresh(
        """
        import mmengine
        import pcca_plugin
        assert pcca_plugin.all_modules_registered()
        from mmdet.registry import MODELS
        from mmaction.registry import DATASETS, METRICS
        assert MODELS.get('PCCARoIHead') is not None
        assert DATASETS.get('MultiSportsDataset') is not None
        assert METRICS.get('MultiSportsTubeMetric') is not None
        """
    )


def test_a_heavy_subpackage_registers_its_own_components():
    """Rule 2: ``import pcca_plugin.models`` registers the models, not the datasets."""
    run_fresh(
        """
        import pcca_plugin.models
        from mmdet.registry import MODELS
        from mmaction.registry import DATASETS
        assert MODELS.get('PCCARoIHead') is pcca_plugin.models.PCCARoIHead
        assert 'MultiSportsDataset' not in DATASETS.module_dict
        assert not pcca_plugin.all_modules_registered()
        """
    )


def test_build_before_registration_says_what_to_call():
    """``build_registered`` before ``register_all_modules()``: the KeyError names the call;
    after it the same config builds."""
    run_fresh(
        f"""
        import pcca_plugin
        from mmdet.registry import MODELS
        from mmengine.config import Config
        model = Config.fromfile({TINY_PCCA_MODEL!r}).model
        model.init_cfg = None
        try:
            pcca_plugin.build_registered(MODELS, model)
        except KeyError as error:
            message = str(error)
        else:
            raise AssertionError('built without registration')
        assert 'PCCARoIHead is not in the' in message, message
        assert 'call pcca_plugin.register_all_modules()' in message, message
        pcca_plugin.register_all_modules()
        detector = pcca_plugin.build_registered(MODELS, model)
        assert type(detector.roi_head).__name__ == 'PCCARoIHead'
        """
    )


def test_build_registered_keeps_other_key_errors(monkeypatch):
    """A missing type that is not ours, after registration: mmengine's own message, no hint."""
    from mmdet.registry import MODELS

    import pcca_plugin

    with pytest.raises(KeyError) as caught:
        pcca_plugin.build_registered(MODELS, dict(type='NoSuchHead'))
    assert 'NoSuchHead is not in the' in str(caught.value)
    assert 'register_all_modules' not in str(caught.value)
