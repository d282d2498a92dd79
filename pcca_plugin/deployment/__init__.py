"""Deployment: the action detector exported to ONNX, run in onnxruntime, benchmarked.

Imports the torch / OpenMMLab stack as the other subpackages do and registers
nothing. ``onnx``, ``onnxruntime`` and ``onnxscript`` (the ``deploy`` extra:
``pip install -e .[deploy]``, which ``make setup`` runs) are imported only by
the functions that need them, through :func:`require_deploy`.
"""

import importlib
from types import ModuleType

#: The packages of the ``deploy`` extra (setup.py), by import name.
DEPLOY_PACKAGES = ('onnx', 'onnxruntime', 'onnxscript')


def require_deploy(name: str) -> ModuleType:
    """Import a package of the ``deploy`` extra, or raise an error that says how to install it.

    Raises:
        ImportError: ``name`` is missing; the message names ``pip install -e .[deploy]``.
    """
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise ImportError(
            f'{name} is not installed ({error}); the ONNX export and runtime need the deploy '
            "extra: pip install -e '.[deploy]' (make setup installs it)."
        ) from error


from .export import (  # noqa: E402
    ExportableDetector,
    build_detector,
    check_exportable,
    check_opset,
    export_onnx,
)
from .roi_align_op import MIN_OPSET, UnsupportedExportError  # noqa: E402
from .runtime import OnnxActionDetector, OnnxDemoBackend  # noqa: E402
from .verify import SCORE_ATOL, verify_onnx  # noqa: E402

__all__ = [
    'DEPLOY_PACKAGES',
    'MIN_OPSET',
    'SCORE_ATOL',
    'ExportableDetector',
    'OnnxActionDetector',
    'OnnxDemoBackend',
    'UnsupportedExportError',
    'build_detector',
    'check_exportable',
    'check_opset',
    'export_onnx',
    'require_deploy',
    'verify_onnx',
]
