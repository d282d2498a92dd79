"""Check the OpenMMLab packages that pcca_plugin needs, before importing them.

A wrong or missing version otherwise shows up much later as a baffling
registry or attribute error; here it becomes one message that names the
package, the version found, the version required and the command to fix it.
"""

import importlib.util
from importlib import metadata
from typing import Dict, List, NamedTuple, Optional, Tuple

from packaging.version import InvalidVersion, Version

SETUP_HINT = 'make setup   (or: bash tools/setup_env.sh)'
MMCV_BUILD_HINT = (
    'pip uninstall -y mmcv && MMCV_WITH_OPS=1 pip install --no-build-isolation '
    '--no-binary mmcv "mmcv==2.1.0"   (about 10 minutes on 2 cores; '
    '`make setup` does it and caches the wheel)'
)


class Requirement(NamedTuple):
    """A distribution and the half-open range ``[minimum, below)`` it must be in."""

    distribution: str
    minimum: str
    below: str
    pin: str  # the version `make setup` installs

    def describe(self) -> str:
        return f'>={self.minimum},<{self.below}'


#: The stack pcca_plugin is tested with. mmdet 3.3 and mmaction2 1.2 assert
#: mmcv < 2.2.0 themselves.
REQUIREMENTS: Tuple[Requirement, ...] = (
    Requirement('mmengine', '0.10.0', '1.0.0', '0.10.7'),
    Requirement('mmcv', '2.1.0', '2.2.0', '2.1.0'),
    Requirement('mmdet', '3.3.0', '3.4.0', '3.3.0'),
    Requirement('mmaction2', '1.2.0', '1.3.0', '1.2.0'),
)


def installed_version(distribution: str) -> Optional[str]:
    """Version string of an installed distribution, or None when absent."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def find_problems(found: Optional[Dict[str, Optional[str]]] = None) -> List[str]:
    """List one human-readable problem per missing or out-of-range package.

    Args:
        found: distribution -> installed version (None when missing). Defaults
            to what is installed; tests pass their own.
    """
    problems = []
    for req in REQUIREMENTS:
        version = (
            (found or {}).get(req.distribution)
            if found is not None
            else installed_version(req.distribution)
        )
        fix = f'pip install "{req.distribution}=={req.pin}"'
        if req.distribution == 'mmcv':
            fix = MMCV_BUILD_HINT
        if version is None:
            problems.append(
                f'{req.distribution} is not installed; pcca_plugin requires '
                f'{req.distribution}{req.describe()}. Fix: {fix}'
            )
            continue
        try:
            ok = Version(req.minimum) <= Version(version) < Version(req.below)
        except InvalidVersion:
            ok = False
        if not ok:
            problems.append(
                f'{req.distribution} {version} is installed, but pcca_plugin '
                f'requires {req.distribution}{req.describe()}. Fix: {fix}'
            )
    return problems


def mmcv_ops_problem() -> Optional[str]:
    """A message when mmcv is installed without its compiled ops (``mmcv._ext``)."""
    if importlib.util.find_spec('mmcv') is None:
        return None  # reported by find_problems
    try:
        importlib.import_module('mmcv._ext')
    except ImportError as exc:
        return (
            'mmcv was installed without its compiled ops (importing mmcv._ext '
            f'failed: {exc}). pcca_plugin needs mmcv.ops.RoIAlign. Rebuild mmcv '
            f'with ops: {MMCV_BUILD_HINT}'
        )
    return None


def check_dependencies() -> None:
    """Raise ImportError listing every dependency problem; do nothing when all is well."""
    problems = find_problems()
    if not problems:
        ops = mmcv_ops_problem()
        if ops:
            problems.append(ops)
    if problems:
        lines = '\n  - '.join(problems)
        raise ImportError(
            f'pcca_plugin cannot start:\n  - {lines}\n'
            f'To install the whole tested stack at once: {SETUP_HINT}'
        )
