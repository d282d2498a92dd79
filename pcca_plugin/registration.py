"""Registering the plugin's components, the OpenMMLab way.

As ``mmaction.utils.register_all_modules``: one function that imports every
subpackage holding a registered component. Each of those subpackages registers
its own components when it is imported (decorators, nothing else), so
:func:`register_all_modules` is a handful of plain imports. Scripts call it
once before building from a config; a config reaches it through
``custom_imports = dict(imports=['pcca_plugin'], allow_failed_imports=False)``
(``pcca_plugin/__init__.py`` says when).
"""

import importlib
import sys
from typing import Any

from . import compat
from .dependencies import check_dependencies

#: The subpackages whose import registers components (in mmdet's, mmaction's and
#: mmengine's registries); ``evaluation`` and ``utils`` outside ``evaluation.metrics``
#: import numpy only and register nothing.
REGISTERING_SUBPACKAGES = (
    'datasets',
    'engine',
    'evaluation.metrics',
    'models',
    'proposals',
    'visualization',
)
#: What to do when a component of ours is missing from a registry.
REGISTER_HINT = (
    "pcca_plugin's components are not registered: call pcca_plugin.register_all_modules() "
    "before building (in a config, custom_imports = dict(imports=['pcca_plugin'], "
    'allow_failed_imports=False) does it)'
)


def register_all_modules() -> None:
    """Register every component of the plugin; calling it again costs nothing.

    Checks that mmcv has its compiled ops, applies every compatibility fix of
    :mod:`pcca_plugin.compat` (the checkpoint fix included) and imports every
    subpackage of :data:`REGISTERING_SUBPACKAGES`. It does not change mmengine's
    default scope (configs set ``default_scope``).
    """
    check_dependencies()  # raises with every problem and its fix
    compat.apply_all()
    for name in REGISTERING_SUBPACKAGES:
        importlib.import_module(f'{__package__}.{name}')


def all_modules_registered() -> bool:
    """Whether every subpackage of :data:`REGISTERING_SUBPACKAGES` is imported."""
    return all(f'{__package__}.{name}' in sys.modules for name in REGISTERING_SUBPACKAGES)


def build_registered(registry, cfg, **kwargs) -> Any:
    """``registry.build(cfg, **kwargs)``; a type missing before registration says what to call.

    For the plugin's own entry points and tools that build from a config: when
    a type is not in the registry and :func:`register_all_modules` has not run,
    the ``KeyError`` gains :data:`REGISTER_HINT`.
    """
    try:
        return registry.build(cfg, **kwargs)
    except KeyError as error:
        message = str(error.args[0]) if error.args else ''
        if all_modules_registered() or 'registry' not in message:
            raise
        raise KeyError(f'{message} ({REGISTER_HINT})') from error
