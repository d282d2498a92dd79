"""`mim train mmaction <config>` finds the plugin's components through `custom_imports`."""

import json
import os
import os.path as osp
import subprocess
import sys

from make_toy_sports import make_toy_sports  # tools/data (see tests/conftest.py)
from mmengine.config import Config

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


def registered_after_explicit_registration(probe_dir, repo_root) -> list:
    """Every component, from a fresh interpreter that registers explicitly."""
    code = (
        'import json, pcca_plugin; pcca_plugin.register_all_modules(); '
        'import registry_probe; print(json.dumps(registry_probe.registered_by_plugin()))'
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([repo_root, str(probe_dir)]))
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
        PYTHONPATH=os.pathsep.join([repo_root, str(probe_dir)]),
        REGISTRY_PROBE_OUT=str(tmp_path / 'registered.json'),
    )
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    # custom_imports registered every component, as an explicit registration does.
    registered = json.loads((tmp_path / 'registered.json').read_text())
    expected = registered_after_explicit_registration(probe_dir, repo_root)
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
    from make_toy_sports import write_clip_level_annotations

    make_toy_sports(str(tmp_path / CONFIG_DATA_ROOT), seed=0, num_train_videos=2, num_val_videos=2)
    pretraining = tmp_path / CONFIG_DATA_ROOT / 'pretraining'
    make_toy_sports(str(pretraining), seed=1000, num_train_videos=2, num_val_videos=2)
    write_clip_level_annotations(str(pretraining))
    env = dict(os.environ, PYTHONPATH=repo_root)
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
