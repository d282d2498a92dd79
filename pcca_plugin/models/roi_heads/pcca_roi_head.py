"""PCCA RoI head: mmaction2's ``AVARoIHead`` with the person-context path.

Shape shorthand: ``B`` clips, ``N`` persons, ``C`` channels, ``L = h * w``
context tokens, ``K`` classes.

Only ``_bbox_forward`` is overridden (detectron2's PointRend style: subclass the
stock head and change as little as possible): the extractor returns person
features and context tokens instead of 5-D RoI features, and the clip sizes
from ``img_shape`` are passed on so extended boxes are clipped to the image.
``loss`` and ``predict`` only add a check of the proposals (a NaN/Inf box
names its clip instead of vanishing in the sampler or poisoning the loss).
Assignment, sampling, targets, losses and ``predict`` (sigmoid or softmax
scores, boxes normalised to ``[0, 1]``, flip and crop undone) are the stock
ones, so mmaction2's AVA/MultiSports datasets, metrics and demos keep working.
"""

from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmaction.models.roi_heads import AVARoIHead
from mmdet.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class PCCARoIHead(AVARoIHead):
    """RoI head of PCCA (Ning et al. 2021, Fig. 1).

    Args:
        num_classes (int, optional): the dataset's class count, when the config
            has it at hand (``num_classes=num_classes``); a value different from
            ``bbox_head.num_classes`` is a construction-time error.
        **kwargs: ``bbox_roi_extractor`` (a :class:`ContextRoIExtractor`),
            ``bbox_head`` (a :class:`PCCABBoxHead`), ``train_cfg``,
            ``test_cfg``, ``init_cfg`` as for ``AVARoIHead``. A
            ``shared_head`` is not supported (the transformer is the shared
            part).

    Raises:
        ValueError: mismatched ``in_channels``, ``num_classes`` or context grid
            between extractor, head and ``num_classes``; the message names both
            values.
    """

    def __init__(self, num_classes: Optional[int] = None, **kwargs) -> None:
        if kwargs.get('shared_head') is not None:
            raise ValueError(
                'PCCARoIHead does not take a shared_head (got '
                f'{kwargs["shared_head"].get("type")}); the cross-attention transformer '
                'inside PCCABBoxHead relates persons to their context.'
            )
        super().__init__(**kwargs)
        self._check_consistency(num_classes)

    def _check_consistency(self, num_classes: Optional[int]) -> None:
        extractor, head = self.bbox_roi_extractor, self.bbox_head
        for name, module, attr in (
            ('bbox_roi_extractor', extractor, 'num_context_tokens'),
            ('bbox_head', head, 'transformer'),
        ):
            if not hasattr(module, attr):
                raise ValueError(
                    f'PCCARoIHead needs a person-context {name} (ContextRoIExtractor / '
                    f'PCCABBoxHead), got {type(module).__name__}; use AVARoIHead for '
                    'the stock extractor and heads.'
                )
        if extractor.in_channels is None:
            extractor.in_channels = head.in_channels
        elif extractor.in_channels != head.in_channels:
            raise ValueError(
                'in_channels mismatch: roi_head.bbox_roi_extractor.in_channels='
                f'{extractor.in_channels} but roi_head.bbox_head.in_channels='
                f'{head.in_channels}; both must equal the backbone output channels '
                '(2304 for SlowFast-R101/R50 with channel_ratio 8, 2048 for SlowOnly-R50).'
            )
        if tuple(extractor.context_output_size) != tuple(head.context_size):
            raise ValueError(
                'context grid mismatch: roi_head.bbox_roi_extractor.context_output_size='
                f'{tuple(extractor.context_output_size)} but roi_head.bbox_head.context_size='
                f'{tuple(head.context_size)}; set both to the same (h, w).'
            )
        if num_classes is not None and num_classes != head.num_classes:
            raise ValueError(
                f'num_classes mismatch: roi_head.num_classes={num_classes} (the dataset) but '
                f'roi_head.bbox_head.num_classes={head.num_classes}; set both to the '
                "dataset's number of classes."
            )

    @staticmethod
    def _check_proposals(rpn_results_list: Sequence, data_samples: Sequence) -> None:
        """Raise on NaN/Inf proposal boxes, naming the clip (``img_key``) and box."""
        for index, (results, sample) in enumerate(zip(rpn_results_list, data_samples)):
            boxes = results.bboxes
            finite = torch.isfinite(boxes).all(dim=-1)
            if not bool(finite.all()):
                bad = int(torch.nonzero(~finite)[0, 0])
                key = sample.metainfo.get('img_key', f'batch element {index}')
                raise ValueError(
                    f'proposal {bad} of clip {key!r} has a NaN/Inf coordinate: '
                    f'{boxes[bad].tolist()}; fix the proposal file (or the person detector '
                    'output) for that frame.'
                )

    def loss(self, x, rpn_results_list, data_samples, **kwargs) -> dict:
        """Stock ``AVARoIHead.loss`` after checking the proposals."""
        self._check_proposals(rpn_results_list, data_samples)
        return super().loss(x, rpn_results_list, data_samples, **kwargs)

    def predict(self, x, rpn_results_list, data_samples, **kwargs):
        """Stock ``AVARoIHead.predict`` after checking the proposals."""
        self._check_proposals(rpn_results_list, data_samples)
        return super().predict(x, rpn_results_list, data_samples, **kwargs)

    def _bbox_forward(
        self, x: Union[Tensor, Tuple[Tensor]], rois: Tensor, batch_img_metas: List[dict], **kwargs
    ) -> dict:
        """Person-context forward used in training and testing.

        Args:
            x (Tensor | tuple[Tensor]): backbone features, ``(B, C_i, T_i, H, W)``
                per pathway.
            rois (Tensor): ``(N, 5)`` as ``(batch_index, x1, y1, x2, y2)``.
            batch_img_metas (list[dict]): per-clip meta; ``img_shape`` (h, w),
                when present, clips the extended boxes to the image.

        Returns:
            dict: ``cls_score`` ``(N, K)`` and ``bbox_feats`` (the person
            features ``(N, C)``).
        """
        img_shapes = None
        if batch_img_metas and all('img_shape' in meta for meta in batch_img_metas):
            img_shapes = [tuple(meta['img_shape'][:2]) for meta in batch_img_metas]
        # (N, C) and the (N, L, C) context tokens, as a sparse product where the
        # extractor can, so that the head may project the feature map once per clip
        person, context = self.bbox_roi_extractor(x, rois, img_shapes, lazy_context=True)
        cls_score = self.bbox_head(person, context)  # (N, K)
        return dict(cls_score=cls_score, bbox_feats=person)


__all__ = ['PCCARoIHead']
