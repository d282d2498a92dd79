"""Action-head loss that also trains on *negative* RoIs (persons without an action).

Shape shorthand: ``R`` sampled RoIs, ``K`` classes.

mmaction2's ``BBoxHeadAVA.loss_and_target`` keeps only the RoIs that have a
label and drops the rest, which suits AVA, where every annotated person has at
least one (pose) action. On MultiSports and on toy-sports, persons who perform
no annotated action (idle players, players before and after their action
tube) and false person detections are in the proposals at test time, and each
of them is a false positive for every class that scores it. A head that never
saw such boxes in training scores them arbitrarily, which on toy-sports made
the per-class AP of whole classes swing by 40 points between training seeds
(``docs/results.md``).

With ``neg_loss_weight = w > 0`` the loss gets one more term,

    loss_neg_cls = w * mean over negative RoIs and classes of BCE(logit, 0)

(with the head's focal factor when ``focal_gamma > 0``), i.e. "no class" for
every sampled RoI the assigner labelled negative. The stock terms on the
positive RoIs are unchanged, so ``w = 0`` (the default) is exactly the stock
loss. It needs sigmoid scores (``multilabel=True``, the paper's per-class
BCE), and an assigner whose ``neg_iou_thr`` is below its ``pos_iou_thr``:
with mmaction2's AVA setting (both 0.9), a proposal of an acting person with
IoU 0.89 would be trained as "no action".

The same mixin also makes the stock loss safe on degenerate batches: a clip
without ground truth gets ``(0, K)`` labels (mmdet gives a 1-D empty tensor,
on which mmaction2's ``bbox_target`` fails), and a batch without any labelled
RoI gives exact zeros instead of the stock mean over an empty set (NaN).
"""

from typing import List

import torch
import torch.nn.functional as F
from mmaction.models.roi_heads.bbox_heads import BBoxHeadAVA
from torch import Tensor


class NegativeRoILossMixin:
    """Adds ``loss_neg_cls`` (see the module docstring) to a ``BBoxHeadAVA`` subclass.

    Put it before ``BBoxHeadAVA`` in the bases. The subclass's ``__init__``
    takes ``neg_loss_weight`` and calls :meth:`_init_negative_loss`.
    """

    neg_loss_weight: float = 0.0

    def _init_negative_loss(self, neg_loss_weight: float) -> None:
        if neg_loss_weight < 0:
            raise ValueError(f'neg_loss_weight must be >= 0, got {neg_loss_weight}.')
        if neg_loss_weight > 0 and not self.multilabel:
            raise ValueError(
                f'neg_loss_weight={neg_loss_weight} needs sigmoid scores: set '
                'multilabel=True (a softmax head has no "no class" target to train).'
            )
        self.neg_loss_weight = float(neg_loss_weight)

    def get_targets(self, sampling_results: List, rcnn_train_cfg) -> tuple:
        """Stock targets; a clip without ground truth gets ``(0, K)`` labels."""
        for result in sampling_results:
            if result.pos_gt_labels.dim() == 1 and result.pos_gt_labels.numel() == 0:
                result.pos_gt_labels = result.pos_gt_labels.new_zeros(
                    (0, self.num_classes), dtype=torch.float32
                )
        return BBoxHeadAVA.get_targets(sampling_results, rcnn_train_cfg)

    def _zero_positive_losses(self, cls_score: Tensor) -> dict:
        """The stock loss entries as exact zeros that keep the graph (no labelled RoI)."""
        zero = cls_score.sum() * 0.0
        losses = {'recall@thr=0.5': zero.detach(), 'prec@thr=0.5': zero.detach()}
        for k in self.topk:
            losses[f'recall@top{k}'] = zero.detach()
            losses[f'prec@top{k}'] = zero.detach()
        losses['loss_action_cls'] = zero
        return losses

    @staticmethod
    def _check_assigner(rcnn_train_cfg) -> None:
        assigner = (rcnn_train_cfg or {}).get('assigner', {})
        pos_thr, neg_thr = assigner.get('pos_iou_thr'), assigner.get('neg_iou_thr')
        if isinstance(pos_thr, float) and isinstance(neg_thr, float) and neg_thr >= pos_thr:
            raise ValueError(
                f'neg_loss_weight > 0 with train_cfg.rcnn.assigner.neg_iou_thr={neg_thr} >= '
                f'pos_iou_thr={pos_thr}: a jittered box of an acting person would be '
                'trained as "no action". Set neg_iou_thr well below pos_iou_thr (e.g. 0.5).'
            )

    def negative_loss(self, cls_score: Tensor, labels: Tensor) -> Tensor:
        """``w * mean BCE(logit, 0)`` over the RoIs whose label row is all zero.

        Args:
            cls_score (Tensor): logits, ``(R, K)`` (background column removed).
            labels (Tensor): targets, ``(R, K)``.

        Returns:
            Tensor: a scalar; an exact zero that keeps the graph when there is
            no negative RoI.
        """
        negative = labels.sum(dim=-1) == 0  # (R,)
        if not bool(negative.any()):
            return cls_score.sum() * 0.0
        logits = cls_score[negative]  # (R_neg, K)
        loss = F.binary_cross_entropy_with_logits(
            logits, torch.zeros_like(logits), reduction='none'
        )
        pt = torch.exp(-loss)
        focal = self.focal_alpha * (1 - pt) ** self.focal_gamma * loss
        return self.neg_loss_weight * focal.mean()

    def loss_and_target(
        self, cls_score: Tensor, rois: Tensor, sampling_results: List, rcnn_train_cfg, **kwargs
    ) -> dict:
        """Stock loss on the labelled RoIs, plus ``loss_neg_cls`` when enabled.

        Args and returns: see ``BBoxHeadAVA.loss_and_target``.
        """
        cls_targets = self.get_targets(sampling_results, rcnn_train_cfg)
        labels, scores = cls_targets[0], cls_score
        if self.background_class:
            labels, scores = labels[:, 1:], cls_score[:, 1:]
        if bool((labels.sum(dim=-1) > 0).any()):
            result = super().loss_and_target(
                cls_score, rois, sampling_results, rcnn_train_cfg, **kwargs
            )
        else:
            result = dict(loss_bbox=self._zero_positive_losses(cls_score), bbox_targets=cls_targets)
        if self.neg_loss_weight > 0:
            self._check_assigner(rcnn_train_cfg)
            result['loss_bbox']['loss_neg_cls'] = self.negative_loss(scores, labels)
        return result


__all__ = ['NegativeRoILossMixin']
