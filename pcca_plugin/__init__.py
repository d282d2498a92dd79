"""pcca_plugin: Person-Context Cross Attention for spatio-temporal action detection.

Importing the package checks the OpenMMLab versions, applies the
compatibility fixes of :mod:`pcca_plugin.compat`, and imports every submodule
so that all components are registered. A config therefore only needs::

    custom_imports = dict(imports=['pcca_plugin'], allow_failed_imports=False)
"""

from .dependencies import check_dependencies
from .version import __version__, version_info

check_dependencies()

from . import compat  # noqa: E402

compat.apply_all()

from . import datasets, engine, evaluation, models, proposals, utils, visualization  # noqa: E402,F401

__all__ = [
    '__version__',
    'version_info',
    'compat',
    'datasets',
    'engine',
    'evaluation',
    'models',
    'proposals',
    'utils',
    'visualization',
]
