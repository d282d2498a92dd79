"""Version checks and the mmcv-ops check give actionable messages."""

import subprocess
import sys

from pcca_plugin import dependencies


def test_installed_stack_passes():
    assert dependencies.find_problems() == []
    assert dependencies.mmcv_ops_problem() is None


def test_wrong_version_names_package_found_required_and_fix():
    found = {'mmengine': '0.10.7', 'mmcv': '2.2.0', 'mmdet': '3.3.0', 'mmaction2': '1.2.0'}
    problems = dependencies.find_problems(found)
    assert len(problems) == 1
    message = problems[0]
    assert 'mmcv 2.2.0 is installed' in message
    assert '>=2.1.0,<2.2.0' in message
    assert 'MMCV_WITH_OPS=1' in message


def test_missing_package_is_reported_with_install_command():
    found = {'mmengine': '0.10.7', 'mmcv': '2.1.0', 'mmdet': None, 'mmaction2': '1.2.0'}
    problems = dependencies.find_problems(found)
    assert problems == [
        'mmdet is not installed; pcca_plugin requires mmdet>=3.3.0,<3.4.0. '
        'Fix: pip install "mmdet==3.3.0"'
    ]


def test_import_fails_with_clear_message_without_mmcv_ops(tmp_path):
    """Hide mmcv._ext behind a meta-path blocker and import pcca_plugin afresh."""
    script = (
        'import importlib.abc, sys\n'
        'class Block(importlib.abc.MetaPathFinder):\n'
        '    def find_spec(self, name, path=None, target=None):\n'
        "        if name == 'mmcv._ext':\n"
        "            raise ImportError('simulated: built without ops')\n"
        'sys.meta_path.insert(0, Block())\n'
        'import pcca_plugin\n'
        'pcca_plugin.register_all_modules()  # the ops are checked when mmcv is needed\n'
    )
    result = subprocess.run(
        [sys.executable, '-c', script], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode != 0
    assert 'mmcv was installed without its compiled ops' in result.stderr
    assert 'MMCV_WITH_OPS=1' in result.stderr


def test_import_fails_with_clear_message_for_wrong_version(tmp_path):
    """Pretend mmdet reports another version; importing pcca_plugin must say what to do."""
    script = (
        'from importlib import metadata\n'
        'real = metadata.version\n'
        "metadata.version = lambda d: '3.1.0' if d == 'mmdet' else real(d)\n"
        'import pcca_plugin\n'
    )
    result = subprocess.run(
        [sys.executable, '-c', script], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode != 0
    assert 'mmdet 3.1.0 is installed, but pcca_plugin requires mmdet>=3.3.0,<3.4.0' in result.stderr
    assert 'pip install "mmdet==3.3.0"' in result.stderr
