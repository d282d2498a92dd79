"""The action detector's test forward for one clip as an ONNX graph.

Shape shorthand: ``T`` frames, ``H x W`` the clip's input size (after the
pipeline's resize), ``N`` person boxes, ``C`` backbone channels after the
pathways are concatenated, ``K`` classes.

:class:`ExportableDetector` wraps a built detector (mmaction2's ``FastRCNN``
with a PCCA or a linear RoI head) as ``clip (1, 3, T, H, W), boxes (N, 4) ->
scores (N, K)``: exactly what the model's predict step computes for those
boxes on one clip (``extract_feat`` and ``roi_head.predict``: the boxes
clipped, the context box enlarged, both RoIAligns, the head, sigmoid or
softmax), written with its own modules and parameters, so that it exports:

- RoIAlign is :func:`~.roi_align_op.roi_align`, which becomes ONNX ``RoiAlign``;
- the cross-attention runs in its *standard* form
  (:mod:`pcca_plugin.models.layers._standard`: keys and values computed, plain
  matrix products and a softmax); the factored, folded and per-clip forms use
  autograd functions and sparse products for training and CPU speed, and
  give the same outputs from the same parameters;
- the pools of mmaction2's extractor and head are reductions instead of
  adaptive pools (the same values).

:func:`export_onnx` runs ``torch.onnx.export`` with the dynamo exporter (the
default of torch >= 2.9; its TorchScript exporter is deprecated) and the
RoIAlign translation. Prior art: mmaction2's
``tools/deployment/export_onnx_stdet.py`` (stock linear head only, fixed
pools sized for one input shape, opset 11).
"""

import logging
import os
import os.path as osp
from contextlib import contextmanager
from typing import Iterator, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..models.roi_extractors.context_roi_extractor import clip_boxes, scale_boxes
from .roi_align_op import MIN_OPSET, UnsupportedExportError, exportable_roi_align
from .verify import check_boxes

#: The ONNX graph's input and output names.
CLIP_INPUT, BOXES_INPUT, SCORES_OUTPUT = 'clip', 'boxes', 'scores'
#: The opset written by default: the dynamo exporter's own (torchlib's) opset.
DEFAULT_OPSET = 18
#: Largest number of boxes the dynamic ``N`` axis is declared for (any count from 1 works).
MAX_BOXES = 4096
#: Boxes of the example input the graph is traced with (not 0 or 1: torch.export
#: would specialise the axis to that value).
EXAMPLE_BOXES = 5
#: Width over height of MultiSports videos (1280x720): 256 -> 455, 360 -> 640 pixels.
MULTISPORTS_ASPECT = 16 / 9
#: Loggers of the exporter whose notes (skipped torchvision ops, constant folding) are noise here.
EXPORTER_LOGGERS = ('torch.onnx', 'onnxscript')
#: What a checkpoint argument of ``none`` means: the config's initialisation (checks only).
NO_CHECKPOINT = 'none'


def _module_name(module: nn.Module) -> str:
    return type(module).__name__


class ExportableDetector(nn.Module):
    """``(clip, boxes) -> scores`` of one clip, from a detector's own modules.

    Args:
        detector (nn.Module): a built ``FastRCNN`` whose ``roi_head`` has either
            a ``ContextRoIExtractor`` and a ``PCCABBoxHead`` (PCCA), or
            mmaction2's ``SingleRoIExtractor3D`` and a ``BBoxHeadAVA``
            (linear; ``LinearBBoxHead`` too). Its transformer runs with
            ``attn_impl='standard'`` inside :meth:`forward` only (same
            parameters and outputs; the detector's own setting is restored).

    Raises:
        UnsupportedExportError: a module has no export path; the message names
            the module and the op.
    """

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector
        self.kind = check_exportable(detector)
        self.eval()

    @property
    def num_classes(self) -> int:
        """``K``."""
        return int(self.detector.roi_head.bbox_head.fc_cls.out_features)

    def forward(self, clip: Tensor, boxes: Tensor) -> Tensor:
        """Per-class probabilities of every box.

        Args:
            clip (Tensor): ``(1, 3, T, H, W)`` float32, the data preprocessor's output.
            boxes (Tensor): ``(N, 4)`` float32 ``(x1, y1, x2, y2)`` in the clip's pixels.

        Returns:
            Tensor: ``(N, K)``, sigmoid (multilabel) or softmax scores.
        """
        features = self.detector.extract_feat(clip)
        features = tuple(features) if isinstance(features, (tuple, list)) else (features,)
        rois = torch.cat([boxes.new_zeros((boxes.shape[0], 1)), boxes], dim=1)  # (N, 5)
        if self.kind == 'pcca':
            logits = self._pcca_logits(features, rois, clip.shape[-2], clip.shape[-1])
        else:
            logits = self._linear_logits(features, rois)
        head = self.detector.roi_head.bbox_head
        return logits.sigmoid() if head.multilabel else logits.softmax(dim=-1)  # (N, K)

    def _pcca_logits(self, features: Tuple[Tensor, ...], rois: Tensor, height, width) -> Tensor:
        """``ContextRoIExtractor`` + ``PCCABBoxHead`` (``PCCARoIHead._bbox_forward``)."""
        extractor = self.detector.roi_head.bbox_roi_extractor
        pooled = [
            x if x.dim() == 4 else (x.mean(dim=2) if extractor.temporal_pool_mode == 'avg'
                                    else x.amax(dim=2))
            for x in features
        ]  # fmt: skip
        v = torch.cat(pooled, dim=1)  # (1, C, H', W')
        extents = rois.new_tensor([[float(height), float(width)]]).expand(rois.shape[0], 2)
        person_rois = clip_boxes(rois, extents, extractor.min_box_size)  # (N, 5)
        context_rois = clip_boxes(
            scale_boxes(rois, extractor.context_scale), extents, extractor.min_box_size
        )
        layer = extractor.person_roi_layer
        common = dict(spatial_scale=layer.spatial_scale, sampling_ratio=layer.sampling_ratio,
                      aligned=layer.aligned)  # fmt: skip
        person = exportable_roi_align(v, person_rois, layer.output_size, **common)  # (N, C, P, P)
        person = person.flatten(2).amax(dim=2)  # (N, C): the P x P max-pool
        context_size = extractor.context_roi_layer.output_size
        context = exportable_roi_align(v, context_rois, context_size, **common)  # (N, C, h, w)
        tokens = context.flatten(2).transpose(1, 2)  # (N, h*w, C)
        head = self.detector.roi_head.bbox_head
        with standard_attention(head.transformer):
            return head(person, tokens)  # (N, K)

    def _linear_logits(self, features: Tuple[Tensor, ...], rois: Tensor) -> Tensor:
        """mmaction2's ``SingleRoIExtractor3D`` + ``BBoxHeadAVA``, pools as reductions."""
        extractor = self.detector.roi_head.bbox_roi_extractor
        head = self.detector.roi_head.bbox_head
        if len(features) >= 2:  # the pathways resized to the longest T (nearest), as mmaction2
            max_t = max(x.shape[2] for x in features)
            features = tuple(
                x if x.shape[2] == max_t else F.interpolate(x, (max_t,) + tuple(x.shape[3:]))
                for x in features
            )
        if extractor.with_temporal_pool:
            reduce = torch.mean if extractor.temporal_pool_mode == 'avg' else torch.amax
            features = tuple(reduce(x, dim=2, keepdim=True) for x in features)
        feat = torch.cat(features, dim=1)  # (1, C, t, H', W')
        size = extractor.roi_layer.output_size
        frames = [
            exportable_roi_align(feat[:, :, t], rois, size, extractor.spatial_scale,
                                 extractor.sampling_ratio, extractor.aligned)
            for t in range(feat.shape[2])
        ]  # fmt: skip
        x = torch.stack(frames, dim=2)  # (N, C, t, h, w)
        x = x.mean(dim=2, keepdim=True) if head.temporal_pool_type == 'avg' else x.amax(2, True)
        x = x.amax(dim=(3, 4)) if head.spatial_pool_type == 'max' else x.mean(dim=(3, 4))
        return head.fc_cls(x.flatten(1))  # (N, K)


@contextmanager
def standard_attention(transformer: nn.Module) -> Iterator[None]:
    """Run ``transformer`` (a ``PersonContextTransformer``) in the standard form, then restore."""
    previous = transformer.attn_impl
    transformer.attn_impl = 'standard'
    try:
        yield
    finally:
        transformer.attn_impl = previous


def check_exportable(detector: nn.Module) -> str:
    """``'pcca'`` or ``'linear'``: which export path the detector's RoI head takes.

    Raises:
        UnsupportedExportError: no path; the message names the module and the op.
    """
    from mmaction.models.roi_heads.bbox_heads import BBoxHeadAVA
    from mmaction.models.roi_heads.roi_extractors import SingleRoIExtractor3D

    from ..models.bbox_heads import PCCABBoxHead
    from ..models.roi_extractors import ContextRoIExtractor

    roi_head = getattr(detector, 'roi_head', None)
    if roi_head is None or not hasattr(roi_head, 'bbox_head'):
        raise UnsupportedExportError(
            f'{_module_name(detector)} has no roi_head with a bbox_head; the ONNX export '
            'covers spatio-temporal detectors (FastRCNN with a PCCA or linear RoI head).'
        )
    extractor, head = roi_head.bbox_roi_extractor, roi_head.bbox_head
    if getattr(roi_head, 'with_shared_head', False):
        raise UnsupportedExportError(
            f'roi_head.shared_head ({_module_name(roi_head.shared_head)}) has no ONNX export '
            'path; export a config without a shared_head.'
        )
    if isinstance(extractor, ContextRoIExtractor) and isinstance(head, PCCABBoxHead):
        return 'pcca'
    if isinstance(extractor, SingleRoIExtractor3D) and isinstance(head, BBoxHeadAVA):
        if extractor.roi_layer_type != 'RoIAlign':
            op = extractor.roi_layer_type
        elif extractor.pool_mode != 'avg':
            op = f'RoIAlign with pool_mode={extractor.pool_mode!r}'
        elif extractor.with_global:
            op = 'the global feature (with_global=True)'
        else:
            return 'linear'
        raise UnsupportedExportError(
            f'roi_head.bbox_roi_extractor (SingleRoIExtractor3D): {op} has no ONNX export '
            "path; use roi_layer_type='RoIAlign', pool_mode='avg', with_global=False."
        )
    raise UnsupportedExportError(
        f'roi_head.bbox_roi_extractor ({_module_name(extractor)}) with roi_head.bbox_head '
        f'({_module_name(head)}): this RoI feature and head pair has no ONNX export path; '
        'exportable are ContextRoIExtractor + PCCABBoxHead and SingleRoIExtractor3D + '
        'BBoxHeadAVA / LinearBBoxHead.'
    )


def check_opset(opset: int) -> int:
    """Return ``opset``, or raise when ONNX ``RoiAlign`` has no half-pixel mode there."""
    if opset < MIN_OPSET:
        raise ValueError(
            f"opset {opset} is too low: RoiAlign's coordinate_transformation_mode='half_pixel' "
            f'(mmcv RoIAlign aligned=True) needs opset >= {MIN_OPSET}; pass --opset '
            f'{MIN_OPSET} or higher (default {DEFAULT_OPSET}).'
        )
    return opset


def build_detector(config: str, checkpoint: Optional[str]) -> Tuple[nn.Module, object]:
    """Build a config's detector and load its weights, in eval mode on the CPU.

    Args:
        config (str): config file (``configs/pcca/...``).
        checkpoint (str, optional): an mmengine checkpoint (``{'state_dict': ...}``,
            the model zoo's layout) or a plain state dict saved with ``torch.save``,
            loaded strictly through mmengine's ``load_checkpoint`` (``module.``
            prefixes dropped); None or ``'none'``: the config's initialisation
            without pretrained weights (random: for checking the export only).

    Returns:
        tuple: the detector and the config.
    """
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.runner import load_checkpoint

    from ..compat import fix_torch_weights_only_checkpoints
    from ..registration import build_registered

    if checkpoint is not None and checkpoint.lower() == NO_CHECKPOINT:
        checkpoint = None
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'{checkpoint}: no such checkpoint file')
    cfg = Config.fromfile(config)
    cfg.model.pop('init_cfg', None)  # pretrained weights: the checkpoint holds them
    if 'pretrained' in cfg.model.get('backbone', {}):
        cfg.model.backbone.pretrained = None
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmaction')):
        model = build_registered(MODELS, cfg.model)
    if checkpoint is None:
        from mmengine.logging import MMLogger

        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel(logging.WARNING)  # not one line per initialised parameter
        try:
            model.init_weights()
        finally:
            logger.setLevel(level)
    else:
        fix_torch_weights_only_checkpoints()
        load_checkpoint(
            model, checkpoint, map_location='cpu', strict=True, revise_keys=[(r'^module\.', '')]
        )
    return model.eval(), cfg


def input_size_from_config(cfg) -> Tuple[int, int]:
    """``(H, W)`` of the clip: the test pipeline's short side at MultiSports' 16:9 aspect.

    Raises:
        ValueError: the test pipeline has no ``Resize(scale=(-1, S))``; pass the size.
    """
    from ..visualization.video_demo import clip_settings_from_config

    short_side = clip_settings_from_config(cfg).short_side
    if short_side is None:
        raise ValueError(
            'the config has no Resize(scale=(-1, short_side)) in its test pipeline, so the '
            "clip's size is unknown; pass --input-size H W (e.g. 96 192 for toy-sports)."
        )
    return short_side, int(round(short_side * MULTISPORTS_ASPECT))


def clip_shape_from_config(cfg, input_size: Optional[Sequence[int]] = None) -> Tuple[int, ...]:
    """``(1, 3, T, H, W)``: ``T`` from the test pipeline, ``H x W`` given or from the config."""
    from ..visualization.video_demo import clip_settings_from_config

    height, width = input_size if input_size else input_size_from_config(cfg)
    return (1, 3, clip_settings_from_config(cfg).clip_len, int(height), int(width))


def export_onnx(
    wrapper: ExportableDetector,
    out: str,
    clip_shape: Sequence[int],
    opset: int = DEFAULT_OPSET,
) -> str:
    """Write ``wrapper``'s graph to ``out`` with a dynamic ``N`` and check it.

    Args:
        wrapper (ExportableDetector): the detector to export.
        out (str): the ``.onnx`` file (weights inside it).
        clip_shape (Sequence[int]): ``(1, 3, T, H, W)``, fixed in the graph.
        opset (int): ``ai.onnx`` opset, at least :data:`MIN_OPSET`.

    Returns:
        str: ``out``.
    """
    import onnx

    from . import require_deploy
    from .roi_align_op import onnx_translations

    require_deploy('onnxscript')
    check_opset(opset)
    if len(clip_shape) != 5 or clip_shape[0] != 1:
        raise ValueError(f'the clip shape must be (1, 3, T, H, W), got {tuple(clip_shape)}.')
    clip = torch.zeros(tuple(int(s) for s in clip_shape))
    boxes = check_boxes(clip.shape[-2], clip.shape[-1], EXAMPLE_BOXES)
    num_boxes = torch.export.Dim('num_boxes', min=1, max=MAX_BOXES)
    with torch.no_grad(), quiet_loggers(EXPORTER_LOGGERS):
        program = torch.onnx.export(
            wrapper,
            (clip, boxes),
            dynamo=True,
            input_names=[CLIP_INPUT, BOXES_INPUT],
            output_names=[SCORES_OUTPUT],
            opset_version=opset,
            dynamic_shapes={'clip': None, 'boxes': {0: num_boxes}},
            custom_translation_table=onnx_translations(),
            external_data=False,
            verbose=False,
        )
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    model = program.model_proto
    written = max(item.version for item in model.opset_import if item.domain in ('', 'ai.onnx'))
    if written > opset:  # the exporter writes its own opset (18) when it cannot convert
        model = convert_opset(model, opset)
    onnx.save(model, out)
    onnx.checker.check_model(out, full_check=True)
    return out


@contextmanager
def quiet_loggers(names: Sequence[str]) -> Iterator[None]:
    """Only errors from the loggers ``names`` inside the block, their levels restored after."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def convert_opset(model, opset: int):
    """``model`` (an ``onnx.ModelProto``) at the lower ``opset``, by onnx's version converter.

    The dynamo exporter writes opset :data:`DEFAULT_OPSET` (18) at least. The
    converter moves the ``axes`` of the reductions back to attributes but keeps
    ``noop_with_empty_axes`` (new in opset 18 for all but ``ReduceSum``), which
    the older reductions do not know; it is dropped where it holds the default 0.

    Raises:
        ValueError: the graph has an op that opset ``opset`` lacks (the message
            names it and says to use a higher opset).
    """
    import onnx
    from onnx import version_converter

    fold_constant_splits(model)
    try:
        converted = version_converter.convert_version(model, opset)
    except Exception as error:  # onnx raises RuntimeError / ValidationError by adapter
        raise ValueError(
            f'the graph cannot be written at opset {opset} ({error_line(error)}); use a higher '
            f"--opset (17 has LayerNormalization; {DEFAULT_OPSET} is the exporter's own)."
        ) from error
    for node in converted.graph.node:
        if node.op_type.startswith('Reduce') and node.op_type != 'ReduceSum':
            for attribute in list(node.attribute):
                if attribute.name == 'noop_with_empty_axes' and attribute.i == 0:
                    node.attribute.remove(attribute)
    try:
        onnx.checker.check_model(converted)
    except onnx.checker.ValidationError as error:
        raise ValueError(
            f'the graph cannot be written at opset {opset} ({error_line(error)}); use a higher '
            f"--opset (17 has LayerNormalization; {DEFAULT_OPSET} is the exporter's own)."
        ) from error
    return converted


def fold_constant_splits(model) -> None:
    """Replace every ``Split`` of an initializer by its pieces, as initializers (in place).

    The exporter leaves the split of a weight (``[W_Q; W_K; W_V]`` of the
    attention) in the graph, and onnx's version converter has no adapter for
    ``Split``-18; splitting the constant beforehand removes the node.
    """
    from onnx import numpy_helper

    graph = model.graph
    initializers = {item.name: item for item in graph.initializer}
    for node in list(graph.node):
        constant_inputs = [name for name in node.input if name]
        if node.op_type != 'Split' or not all(name in initializers for name in constant_inputs):
            continue
        array = numpy_helper.to_array(initializers[node.input[0]])
        attributes = {a.name: a.i for a in node.attribute}
        axis = attributes.get('axis', 0)
        if len(constant_inputs) > 1:  # the sizes as an input
            sizes = numpy_helper.to_array(initializers[node.input[1]]).tolist()
        else:  # num_outputs pieces, the last one smaller (torch.chunk)
            step = -(-array.shape[axis] // len(node.output))
            sizes = [min(step, array.shape[axis] - i * step) for i in range(len(node.output))]
        offsets = np.cumsum(sizes)[:-1]
        for name, piece in zip(node.output, np.split(array, offsets, axis=axis)):
            graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(piece), name))
        graph.node.remove(node)
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    for item in list(graph.initializer):
        if item.name not in used:
            graph.initializer.remove(item)


def error_line(error: BaseException) -> str:
    """The first line of an error's text."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def describe_onnx(path: str) -> str:
    """The graph's inputs, outputs (name, type, shape) and opsets, one per line."""
    import onnx

    from . import require_deploy

    require_deploy('onnx')
    model = onnx.load(path, load_external_data=False)

    def value_line(kind: str, value) -> str:
        tensor = value.type.tensor_type
        dims = [d.dim_param or str(d.dim_value) for d in tensor.shape.dim]
        dtype = onnx.TensorProto.DataType.Name(tensor.elem_type).lower()
        return f'{kind} {value.name}: {dtype} ({", ".join(dims)})'

    lines = [value_line('input', value) for value in model.graph.input]
    lines += [value_line('output', value) for value in model.graph.output]
    opsets = ', '.join(f'{item.domain or "ai.onnx"} {item.version}' for item in model.opset_import)
    return '\n'.join(lines + [f'opset: {opsets}'])


def graph_op_domains(path: str) -> set:
    """The domains of every node of the graph (``''`` is ``ai.onnx``)."""
    import onnx

    model = onnx.load(path, load_external_data=False)
    return {node.domain for node in model.graph.node} | {f.domain for f in model.functions}


__all__ = [
    'BOXES_INPUT',
    'CLIP_INPUT',
    'DEFAULT_OPSET',
    'ExportableDetector',
    'NO_CHECKPOINT',
    'SCORES_OUTPUT',
    'build_detector',
    'check_exportable',
    'check_opset',
    'clip_shape_from_config',
    'describe_onnx',
    'export_onnx',
    'graph_op_domains',
    'input_size_from_config',
]
