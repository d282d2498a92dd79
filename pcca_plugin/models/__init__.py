"""Model components: context RoI extractor, cross-attention transformer, PCCA and linear heads.

Everything is registered in mmdet's ``MODELS`` (mmaction2's ``FastRCNN`` is
built in mmdet's scope), next to mmaction2's ``AVARoIHead``; the checked
pretrained-weights loader ``CheckedPretrained`` is a weight initializer in
mmengine's ``WEIGHT_INITIALIZERS``.
"""

from .bbox_heads import LinearBBoxHead, NegativeRoILossMixin, PCCABBoxHead
from .checkpoint_surgery import extract_submodule_weights
from .config_checks import check_config_consistency
from .layers import (
    CrossAttentionLayer,
    LearnedPositionalEncoding2D,
    PersonContextTransformer,
    count_macs_per_person,
)
from .pretrained import (
    CheckedPretrainedInit,
    PretrainedWeightsError,
    check_fit,
    read_checkpoint,
    resnet_depths,
)
from .roi_extractors import ContextRoIExtractor, clip_boxes, scale_boxes, temporal_pool
from .roi_heads import PCCARoIHead
from .tta import (
    SpatioTemporalTTAModel,
    apply_tta,
    build_tta_pipeline,
    flip_permutation,
    merge_view_scores,
    unflip_boxes,
)
from .weight_conversion import (
    ConversionError,
    convert_slowfast_checkpoint,
    write_converted_checkpoint,
)

__all__ = [
    'ConversionError',
    'convert_slowfast_checkpoint',
    'extract_submodule_weights',
    'write_converted_checkpoint',
    'apply_tta',
    'CheckedPretrainedInit',
    'PretrainedWeightsError',
    'check_fit',
    'read_checkpoint',
    'resnet_depths',
    'SpatioTemporalTTAModel',
    'build_tta_pipeline',
    'flip_permutation',
    'merge_view_scores',
    'unflip_boxes',
    'ContextRoIExtractor',
    'CrossAttentionLayer',
    'LearnedPositionalEncoding2D',
    'LinearBBoxHead',
    'NegativeRoILossMixin',
    'PCCABBoxHead',
    'PCCARoIHead',
    'PersonContextTransformer',
    'check_config_consistency',
    'clip_boxes',
    'count_macs_per_person',
    'scale_boxes',
    'temporal_pool',
]
