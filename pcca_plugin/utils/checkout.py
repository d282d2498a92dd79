"""Where the repository checkout is: the one definition of its root.

``make setup`` installs the package in editable mode, so the checkout that
holds ``pcca_plugin/`` also holds ``configs/``, ``tools/`` and ``tests/``. The
demo (``make demo``) and the tests find those folders through here. Standard
library only.
"""

import os.path as osp

#: The checkout that holds this package, ``configs/``, ``tools/`` and ``tests/``.
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def repo_path(*parts: str) -> str:
    """The absolute path of ``parts`` inside the checkout, e.g. ``repo_path('configs', 'pcca')``."""
    return osp.join(REPO_ROOT, *parts)
