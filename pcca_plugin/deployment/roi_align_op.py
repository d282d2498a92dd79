"""mmcv's average RoIAlign as one exportable op that becomes the standard ONNX ``RoiAlign``.

Shape shorthand: ``B`` images, ``C`` channels, ``H x W`` map, ``N`` RoIs,
``h x w`` output bins.

The op ``pcca_deploy::roi_align`` is a ``torch.library`` custom op: in PyTorch
it runs the project's :class:`~pcca_plugin.models.layers.RoIAlign` (mmcv's
sampling, sparse kernel on CPU), and ``torch.export`` keeps it as one node,
which :func:`roi_align_to_onnx` (the entry of :data:`ONNX_TRANSLATIONS`, passed
to ``torch.onnx.export(..., custom_translation_table=...)``) writes as the ONNX
operator ``RoiAlign`` of the ``ai.onnx`` domain (ONNX operator spec,
``RoiAlign``, versions 10 and 16).

How mmcv's arguments map to the ONNX attributes (mmcv
``mmcv/ops/csrc/common/*/roi_align*``, ONNX ``RoiAlign``-16):

- ``aligned=True`` (half-pixel offset, no minimum RoI size) is
  ``coordinate_transformation_mode='half_pixel'``, which exists from opset
  :data:`MIN_OPSET` on; ``aligned=False`` (no offset, RoIs at least one cell)
  is ``'output_half_pixel'`` (the only behaviour of ``RoiAlign``-10);
- ``sampling_ratio`` is the same number (0: ``ceil(roi size / bins)``
  samples per bin side in both);
- ``pool_mode='avg'`` is ``mode='avg'``. mmcv's ``'max'`` takes the largest
  bilinear sample, ONNX's the largest weighted corner, so max pooling has no
  export path (:class:`UnsupportedExportError`);
- the RoI ``(batch_index, x1, y1, x2, y2)`` is split into ``rois`` ``(N, 4)``
  and ``batch_indices`` ``(N,)`` int64.

Both sample beyond the map the same way (zeros farther than one cell out,
clamped inside that margin), so the ONNX graph equals mmcv to float rounding
(``tests/test_deployment/``).
"""

from typing import Tuple

import torch
from torch import Tensor

from ..models.layers.roi_align import RoIAlign

#: The first ``ai.onnx`` opset whose ``RoiAlign`` has ``coordinate_transformation_mode``
#: (ONNX operator spec, RoiAlign-16), needed for mmcv's ``aligned=True``.
MIN_OPSET = 16
#: ONNX ``RoiAlign`` coordinate modes for mmcv's ``aligned`` (True, False).
COORDINATE_MODE = {True: 'half_pixel', False: 'output_half_pixel'}
#: Columns of an mmcv RoI: ``(batch_index, x1, y1, x2, y2)``.
ROI_COLUMNS = 5
#: ONNX ``TensorProto.INT64``, the type of ``RoiAlign``'s ``batch_indices``.
ONNX_INT64 = 7


class UnsupportedExportError(NotImplementedError):
    """A module of the detector computes something the ONNX export cannot write."""


@torch.library.custom_op('pcca_deploy::roi_align', mutates_args=())
def roi_align(
    feat: Tensor,
    rois: Tensor,
    output_height: int,
    output_width: int,
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
) -> Tensor:
    """mmcv's average RoIAlign, one node in an exported graph.

    Args:
        feat (Tensor): ``(B, C, H, W)``.
        rois (Tensor): ``(N, 5)`` as ``(batch_index, x1, y1, x2, y2)``, input pixels.
        output_height, output_width (int): ``h``, ``w``.
        spatial_scale (float): feature cells per input pixel.
        sampling_ratio (int): samples per bin side, 0 = adaptive.
        aligned (bool): mmcv's half-pixel offset.

    Returns:
        Tensor: ``(N, C, h, w)``.
    """
    layer = RoIAlign((output_height, output_width), spatial_scale, sampling_ratio, 'avg', aligned)
    return layer(feat, rois).contiguous()


@roi_align.register_fake
def _roi_align_shape(feat, rois, output_height, output_width, *attributes):
    """The output's shape and type, for ``torch.export``: ``(N, C, h, w)``."""
    return feat.new_empty((rois.shape[0], feat.shape[1], output_height, output_width))


def roi_align_to_onnx(
    feat, rois, output_height, output_width, spatial_scale, sampling_ratio, aligned
):
    """The ONNX translation of :func:`roi_align`: one ``ai.onnx`` ``RoiAlign`` node.

    Called by the dynamo exporter with onnxscript values for ``feat`` ``(B, C, H,
    W)`` and ``rois`` ``(N, 5)``, and Python values for the attributes.
    """
    from onnxscript import opset18 as op

    batch_indices = op.Cast(op.Gather(rois, op.Constant(value_int=0), axis=1), to=ONNX_INT64)
    boxes = op.Slice(rois, op.Constant(value_ints=[1]), op.Constant(value_ints=[ROI_COLUMNS]),
                     op.Constant(value_ints=[1]))  # fmt: skip
    return op.RoiAlign(
        feat,
        boxes,  # (N, 4)
        batch_indices,  # (N,) int64
        coordinate_transformation_mode=COORDINATE_MODE[bool(aligned)],
        mode='avg',
        output_height=int(output_height),
        output_width=int(output_width),
        sampling_ratio=int(sampling_ratio),
        spatial_scale=float(spatial_scale),
    )


def onnx_translations() -> dict:
    """``custom_translation_table`` of ``torch.onnx.export``: the op -> its ONNX function."""
    return {torch.ops.pcca_deploy.roi_align.default: roi_align_to_onnx}


def exportable_roi_align(
    feat: Tensor,
    rois: Tensor,
    output_size: Tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool = True,
) -> Tensor:
    """:func:`roi_align` with a tuple size: ``(B, C, H, W)``, ``(N, 5)`` -> ``(N, C, h, w)``."""
    height, width = output_size
    return roi_align(
        feat, rois, int(height), int(width), float(spatial_scale), int(sampling_ratio), aligned
    )


__all__ = [
    'COORDINATE_MODE',
    'MIN_OPSET',
    'UnsupportedExportError',
    'exportable_roi_align',
    'onnx_translations',
    'roi_align',
    'roi_align_to_onnx',
]
