"""Attributes of a package imported on first access (PEP 562 ``__getattr__``).

Used by the light subpackages (:mod:`pcca_plugin.evaluation`,
:mod:`pcca_plugin.utils`) for the few names that pull in torch or the
OpenMMLab stack, so that importing the rest stays pure numpy. Imports nothing
itself beyond :mod:`importlib`.
"""

import importlib
from typing import Callable, Dict


def lazy_attributes(package: str, lazy: Dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` that imports ``lazy`` names on first access.

    Args:
        package: the package's ``__name__`` (relative module names resolve in it).
        lazy: attribute -> relative module (``'.metrics'``). An attribute named
            like its module's last part is the module itself; any other is the
            module's attribute of that name.

    Returns:
        The ``__getattr__`` to assign in the package; other names raise
        ``AttributeError`` as usual.
    """

    def __getattr__(name: str):
        if name not in lazy:
            raise AttributeError(f'module {package!r} has no attribute {name!r}')
        module = importlib.import_module(lazy[name], package)
        return module if lazy[name] == f'.{name}' else getattr(module, name)

    return __getattr__
