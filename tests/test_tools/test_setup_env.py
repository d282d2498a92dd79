"""``tools/setup_env.sh``: the mmcv wheel cache (key, sha256 record, rebuild) and the pins.

The script's functions are called from ``bash`` after ``source tools/setup_env.sh``
(which defines them and runs nothing). The mmcv build is replaced by a fake
(``PCCA_MMCV_BUILD_CMD``) that writes a small file named like the real wheel,
so these tests never compile mmcv; everything else (the cache folder, the
sha256 record, its check, the rebuild) is the script's own code.
"""

import ast
import hashlib
import os
import os.path as osp
import re
import shlex
import subprocess
import sys
from importlib import metadata

import pytest

from pcca_plugin.testing import REPO_ROOT

SCRIPT = osp.join(REPO_ROOT, 'tools', 'setup_env.sh')
CONSTRAINTS = osp.join(REPO_ROOT, 'requirements', 'constraints.txt')
WHEEL_NAME = 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl'
#: A stand-in for the mmcv build: counts its calls, writes a "wheel" with the call number.
FAKE_BUILD = (
    'n=$(( $(cat "$BUILD_COUNT" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$BUILD_COUNT"; '
    f'printf "fake mmcv build %s" "$n" > "$1/{WHEEL_NAME}"'
)


def call(function_call: str, tmp_path, **env) -> subprocess.CompletedProcess:
    """Run ``source setup_env.sh; <function_call>`` in bash with the test's Python as $VPY."""
    environment = dict(
        os.environ,
        VPY=sys.executable,
        BUILD_COUNT=str(tmp_path / 'builds'),
        PCCA_MMCV_BUILD_CMD=FAKE_BUILD,
    )
    environment.update(env)
    return subprocess.run(
        ['bash', '-c', f'source {shlex.quote(SCRIPT)} && {function_call}'],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def builds(tmp_path) -> int:
    path = tmp_path / 'builds'
    return int(path.read_text()) if path.exists() else 0


def sha256(path) -> str:
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_cache_key_holds_torch_cuda_force_cuda_and_python(tmp_path):
    keys = {}
    for torch_version, cuda, force_cuda in (
        ('2.13.0+cpu', 'cpu', '0'),
        ('2.13.0+cpu', 'cpu', '1'),
        ('2.13.0+cu121', '12.1', '1'),
        ('2.13.0+cu121', '12.1', '0'),
        ('2.13.0+cu124', '12.4', '1'),
    ):
        result = call(f'wheel_cache_key {torch_version} {cuda} {force_cuda} cp311', tmp_path)
        assert result.returncode == 0, result.stderr
        key = result.stdout.strip()
        assert '/' not in key and '+' not in key
        assert f'cuda-{cuda}' in key and f'force-cuda-{force_cuda}' in key and 'cp311' in key
        keys[(torch_version, cuda, force_cuda)] = key
    assert len(set(keys.values())) == len(keys)  # a CPU wheel never serves a CUDA build
    other_python = call('wheel_cache_key 2.13.0+cpu cpu 0 cp312', tmp_path).stdout.strip()
    assert other_python != keys[('2.13.0+cpu', 'cpu', '0')]


def test_torch_build_info_reports_cuda_or_cpu(tmp_path):
    import torch

    result = call('torch_build_info', tmp_path)
    assert result.returncode == 0, result.stderr
    version, cuda, python_tag = result.stdout.split()
    assert version == torch.__version__ and cuda == (torch.version.cuda or 'cpu')
    assert python_tag == 'cp{}{}'.format(*sys.version_info[:2])


def test_wheel_is_built_recorded_reused_and_rebuilt_when_tampered(tmp_path):
    cache = tmp_path / 'wheels' / 'torch-2.13.0_cpu_cuda-cpu_force-cuda-0_cp311'
    wheel = cache / WHEEL_NAME

    first = call(f'mmcv_wheel {cache}', tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == str(wheel) and builds(tmp_path) == 1
    record = (cache / (WHEEL_NAME + '.sha256')).read_text().split()
    assert record == [sha256(wheel), WHEEL_NAME]  # the sha256sum format

    again = call(f'mmcv_wheel {cache}', tmp_path)
    assert again.returncode == 0 and again.stdout.strip() == str(wheel)
    assert builds(tmp_path) == 1 and 'sha256 verified' in again.stderr

    with open(wheel, 'ab') as f:  # a cached wheel changed after it was built
        f.write(b'tampered')
    rebuilt = call(f'mmcv_wheel {cache}', tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert 'sha256 mismatch' in rebuilt.stderr and 'rebuilding' in rebuilt.stderr
    assert builds(tmp_path) == 2 and wheel.read_bytes() == b'fake mmcv build 2'
    assert (cache / (WHEEL_NAME + '.sha256')).read_text().split()[0] == sha256(wheel)

    (cache / (WHEEL_NAME + '.sha256')).unlink()  # a wheel without a record is not trusted
    unrecorded = call(f'mmcv_wheel {cache}', tmp_path)
    assert unrecorded.returncode == 0 and 'no sha256 record' in unrecorded.stderr
    assert builds(tmp_path) == 3


def test_a_failed_build_fails_without_a_wheel(tmp_path):
    cache = tmp_path / 'wheels' / 'key'
    result = call(f'mmcv_wheel {cache}', tmp_path, PCCA_MMCV_BUILD_CMD='exit 3')
    assert result.returncode != 0 and result.stdout.strip() == ''
    result = call(f'mmcv_wheel {cache}', tmp_path, PCCA_MMCV_BUILD_CMD='true')  # no wheel written
    assert result.returncode != 0 and 'wrote no mmcv-2.1.0-*.whl' in result.stderr
    assert not cache.exists() or not list(cache.iterdir())


def test_sourcing_the_script_runs_nothing(tmp_path):
    result = call('echo sourced', tmp_path, PCCA_VENV=str(tmp_path / 'venv'))
    assert result.returncode == 0 and result.stdout == 'sourced\n'
    assert not (tmp_path / 'venv').exists()


#: A stand-in for the venv's python: logs pip calls instead of running them, says mmcv is not
#: installed (so the cached-wheel branch runs), skips the final import check (slow, and not
#: what is tested), and runs everything else (version checks, torch's build) for real.
FAKE_VENV_PYTHON = """#!/usr/bin/env bash
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then echo "$*" >> "$FAKE_PIP_LOG"; exit 0; fi
if [ "$1" = "-" ] && [ "$2" = "mmcv" ]; then exit 1; fi
case "${2:-}" in *"import pcca_plugin"*) echo "(import check skipped)"; exit 0 ;; esac
exec "$REAL_PYTHON" "$@"
"""


def test_setup_installs_the_keyed_wheel_with_the_constraints(tmp_path):
    """The whole script (main) with pip replaced by a log: every install is held to the
    constraints, and the mmcv wheel comes from the folder of this torch and FORCE_CUDA."""
    import torch

    venv_bin = tmp_path / 'venv' / 'bin'
    venv_bin.mkdir(parents=True)
    (venv_bin / 'python').write_text(FAKE_VENV_PYTHON)
    (venv_bin / 'python').chmod(0o755)
    pip_log = tmp_path / 'pip.log'
    cuda = torch.version.cuda or 'cpu'
    python_tag = 'cp{}{}'.format(*sys.version_info[:2])
    for force_cuda, expected_builds in (('0', 1), ('1', 2)):  # a CPU wheel never serves CUDA
        env = dict(
            os.environ,
            PCCA_VENV=str(tmp_path / 'venv'),
            PCCA_WHEEL_CACHE=str(tmp_path / 'wheels'),
            PCCA_MMCV_BUILD_CMD=FAKE_BUILD,
            BUILD_COUNT=str(tmp_path / 'builds'),
            FAKE_PIP_LOG=str(pip_log),
            REAL_PYTHON=sys.executable,
            FORCE_CUDA=force_cuda,
        )
        env.pop('PCCA_SKIP_TORCH', None)
        env.pop('PCCA_CONSTRAINTS', None)
        result = subprocess.run(
            ['bash', SCRIPT], env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert 'done in' in result.stdout and builds(tmp_path) == expected_builds
        key = f'torch-{torch.__version__.replace("+", "_")}_cuda-{cuda}_force-cuda-{force_cuda}'
        wheel = tmp_path / 'wheels' / f'{key}_{python_tag}' / WHEEL_NAME
        calls = pip_log.read_text().splitlines()
        pip_log.unlink()
        assert calls and all('-c requirements/constraints.txt' in call for call in calls)
        assert any(call.endswith(f'--force-reinstall --no-deps {wheel}') for call in calls)
        assert any(call.endswith('-e .[tests,deploy]') for call in calls)


# ------------------------------------------------------------------ pins
def requirement_name(spec: str) -> str:
    return re.match(r'[A-Za-z0-9_.-]+', spec).group(0).lower().replace('_', '-')


def constraints() -> dict:
    pins = {}
    with open(CONSTRAINTS, encoding='utf-8') as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                name, _, version = line.partition('==')
                assert version, f'{CONSTRAINTS}: {line!r} is not pinned with =='
                pins[requirement_name(name)] = version.strip()
    return pins


def packages_the_script_installs():
    """Names given to pip install in setup_env.sh (not variables, options or the project)."""
    names = set()
    with open(SCRIPT, encoding='utf-8') as f:
        for line in f:
            if '"${PIP[@]}"' not in line or line.lstrip().startswith('#'):
                continue
            for token in shlex.split(line.split('"${PIP[@]}"', 1)[1]):
                if not token.startswith('-') and '$' not in token and not token.startswith('.'):
                    names.add(requirement_name(token))
    return names


def packages_setup_py_requires():
    """install_requires and every extra of setup.py."""
    with open(osp.join(REPO_ROOT, 'setup.py'), encoding='utf-8') as f:
        tree = ast.parse(f.read())
    call_node = next(
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'setup'
    )
    names = set()
    for keyword in call_node.keywords:
        if keyword.arg == 'install_requires':
            names |= {requirement_name(item.value) for item in keyword.value.elts}
        elif keyword.arg == 'extras_require':
            for extra in keyword.value.values:
                names |= {requirement_name(item.value) for item in extra.elts}
    return names


def test_every_direct_dependency_is_pinned():
    pins = constraints()
    script_names = packages_the_script_installs()
    assert {'numpy', 'opencv-python', 'setuptools', 'ninja'} <= script_names  # the parser works
    missing = sorted((script_names | packages_setup_py_requires()) - set(pins) - {'torch', 'mmcv'})
    assert not missing, f'{CONSTRAINTS} has no pin for {missing}'
    # torch is chosen by the script (CPU wheel, or PCCA_SKIP_TORCH); mmcv is built from source.
    assert 'openmim' in pins and 'numpy' in pins and 'opencv-python' in pins


def test_setup_applies_the_constraints():
    with open(SCRIPT, encoding='utf-8') as f:
        script = f.read()
    assert re.search(r'PIP=\(.*-c "\$constraints"\)', script)
    assert 'requirements/constraints.txt' in script
    # `make setup` passes the file to the script (make -n prints the command, runs nothing).
    dry_run = subprocess.run(
        ['make', '-n', 'setup'], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30
    )
    assert dry_run.returncode == 0, dry_run.stderr
    assert 'PCCA_CONSTRAINTS=requirements/constraints.txt bash tools/setup_env.sh' in dry_run.stdout
    with open(osp.join(REPO_ROOT, 'Makefile'), encoding='utf-8') as f:
        makefile = f.read()
    # A changed pin re-runs the setup that `make test` and `make demo` depend on.
    assert re.search(r'^\$\(STAMP\):.*\$\(CONSTRAINTS\)', makefile, re.M)


@pytest.mark.parametrize('name', sorted(constraints()))
def test_installed_versions_match_the_pins(name):
    """The environment `make setup` built holds exactly the pinned versions."""
    try:
        installed = metadata.version(name)
    except metadata.PackageNotFoundError:
        pytest.fail(f'{name} is pinned in {CONSTRAINTS} but not installed; run `make setup`')
    assert installed == constraints()[name]
