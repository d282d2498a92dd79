"""Test-time augmentation for spatio-temporal action detection (scales x horizontal flip).

Shape shorthand: ``V`` views of a clip, ``N`` proposals of its key frame,
``K`` classes.

The design follows mmengine's ``BaseTTAModel`` as mmdet's ``DetTTAModel`` and
mmpretrain's ``AverageClsScoreTTA`` use it: mmcv's ``TestTimeAug`` makes one
copy of each clip per (scale, flip) view, the wrapped detector runs on every
view, and :meth:`SpatioTemporalTTAModel.merge_preds` merges the views. What
differs from mmdet: the proposals are *given* (the same person boxes in every
view), so nothing is re-detected or suppressed; each proposal keeps its box
and its per-class score is the (weighted) mean over the views, as in the
multi-scale + flip testing of the SlowFast / ACAR-Net detection code.

Flip convention: mmaction2's ``Flip`` maps a box to ``x' = W - x`` (continuous
pixel coordinates), while ``BBoxHeadAVA.predict_by_feat`` would undo it as
``x = W - 1 - x'``, one pixel off. The TTA model therefore hides the flag from
the head (``flip`` is set to False in the view's meta) and undoes the flip
itself on the normalised boxes, ``x = 1 - x'``, which inverts ``Flip`` exactly.
"""

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmaction.registry import MODELS
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.model import BaseTTAModel
from mmengine.structures import InstanceData
from torch import Tensor

from ..registration import build_registered

#: Short sides of the default views: 256x455 and 360x640 for 16:9 MultiSports videos.
DEFAULT_TTA_SCALES: Tuple[int, ...] = (256, 360)
#: Meta key where the view's flip flag is kept once it is hidden from the head.
TTA_FLIP_KEY = 'tta_flip'
#: Largest difference (normalised coordinates) between a view's unflipped proposal
#: boxes and the reference view's before the views count as different proposals.
DEFAULT_BOX_ATOL = 1e-3
#: The TTA model of a config without ``tta_model`` (``tools/test.py --tta``).
DEFAULT_TTA_MODEL = dict(type='SpatioTemporalTTAModel', scales=DEFAULT_TTA_SCALES, flip=True)


def unflip_boxes(boxes: Tensor, crop_quadruple: Optional[Sequence[float]] = None) -> Tensor:
    """Undo a horizontal flip on boxes normalised to ``[0, 1]``.

    ``Flip`` maps ``(x1, x2)`` to ``(W - x2, W - x1)``; divided by ``W`` this is
    ``(1 - x2, 1 - x1)``, its own inverse. When a crop was undone after the
    normalisation (``x_out = x * tw + cx``), the flip is undone inside the
    crop: ``x = tw + 2 cx - x_out``.

    Args:
        boxes (Tensor[N, 4]): ``(x1, y1, x2, y2)`` of the flipped view,
            normalised by the frame size.
        crop_quadruple (sequence[float], optional): ``(cx, cy, tw, th)`` of a
            crop undone by the head (None: no crop, i.e. ``(0, 0, 1, 1)``).

    Returns:
        Tensor[N, 4]: the boxes in the unflipped frame.
    """
    offset, width = 0.0, 1.0
    if crop_quadruple is not None:
        offset, width = float(crop_quadruple[0]), float(crop_quadruple[2])
    mirror = width + 2.0 * offset
    unflipped = boxes.clone()
    unflipped[:, 0] = mirror - boxes[:, 2]
    unflipped[:, 2] = mirror - boxes[:, 0]
    return unflipped


def merge_view_scores(
    scores: Sequence[Tensor], weights: Optional[Sequence[float]] = None
) -> Tensor:
    """Weighted mean of the per-class scores of the views.

    Args:
        scores (sequence[Tensor[N, K]]): one score matrix per view.
        weights (sequence[float], optional): one weight per view (None: equal).

    Returns:
        Tensor[N, K]: ``sum_v w_v s_v / sum_v w_v``.
    """
    stacked = torch.stack(list(scores))  # (V, N, K)
    if weights is None:
        return stacked.mean(dim=0)
    w = torch.as_tensor(weights, dtype=stacked.dtype, device=stacked.device)
    return (stacked * w[:, None, None]).sum(dim=0) / w.sum()


def flip_permutation(num_classes: int, flip_label_map: Optional[Dict[int, int]]) -> List[int]:
    """Column order that maps a flipped view's scores to the original classes.

    Args:
        num_classes: ``K``.
        flip_label_map: class -> its mirror class (e.g. ``{0: 1, 1: 0}`` for
            'run left' / 'run right'); classes not listed map to themselves.

    Returns:
        list[int]: ``perm`` with ``scores_original[:, k] = scores_flipped[:, perm[k]]``.

    Raises:
        ValueError: a class outside ``[0, K)`` or a map that is not symmetric.
    """
    perm = list(range(num_classes))
    for src, dst in (flip_label_map or {}).items():
        src, dst = int(src), int(dst)
        for value in (src, dst):
            if not 0 <= value < num_classes:
                raise ValueError(
                    f'tta_model.flip_label_map {dict(flip_label_map)} names class {value}, but the '
                    f'model scores {num_classes} classes; fix flip_label_map or use the config '
                    'of this model'
                )
        if int((flip_label_map or {}).get(dst, dst)) != src:
            raise ValueError(
                f'tta_model.flip_label_map must be symmetric: {src} -> {dst} but {dst} -> '
                f'{(flip_label_map or {}).get(dst, dst)}'
            )
        perm[src] = dst
    return perm


def _as_label_map(flip_label_map) -> Dict[int, int]:
    """``flip_label_map`` as a dict of ints (from a dict or a list of pairs)."""
    if flip_label_map is None:
        return {}
    try:
        pairs = flip_label_map.items() if hasattr(flip_label_map, 'items') else flip_label_map
        return {int(src): int(dst) for src, dst in pairs}
    except (TypeError, ValueError):
        raise TypeError(
            f'tta_model.flip_label_map must map class indices, e.g. {{0: 1, 1: 0}} or '
            f'[[0, 1], [1, 0]], got {flip_label_map!r}'
        ) from None


@MODELS.register_module()
class SpatioTemporalTTAModel(BaseTTAModel):
    """Average a spatio-temporal detector's per-proposal scores over scales and flips.

    Args:
        module (dict | nn.Module): the detector (mmaction2's ``FastRCNN`` with
            a PCCA or AVA RoI head).
        scales (sequence[int]): short side of every scale view, in the order the
            TTA pipeline resizes (default 256 and 360: 256x455 and 360x640 on
            16:9 videos). ``None`` accepts any view size (one scale).
        flip (bool): the pipeline also runs every scale flipped.
        flip_label_map (dict[int, int], optional): mirror classes whose scores
            swap under a horizontal flip (e.g. 'run left' <-> 'run right').
        view_weights (sequence[float], optional): a weight per view in the
            order (scale, no flip), (scale, flip), ... (None: equal weights).
        box_atol (float): tolerance on the normalised boxes of the views.
        data_preprocessor (dict, optional): see ``BaseTTAModel``.

    Raises:
        ValueError: when the views of a clip do not match ``scales`` and
            ``flip`` (the message names the clip, what was expected and what
            came), or their proposals differ.
    """

    def __init__(
        self,
        module,
        scales: Optional[Sequence[int]] = DEFAULT_TTA_SCALES,
        flip: bool = True,
        flip_label_map: Optional[Dict[int, int]] = None,
        view_weights: Optional[Sequence[float]] = None,
        box_atol: float = DEFAULT_BOX_ATOL,
        data_preprocessor=None,
    ) -> None:
        if isinstance(module, dict):
            # The detector's own scope (FastRCNN lives in mmdet) is given by its `_scope_`.
            module = build_registered(
                MODELS,
                dict(module, data_preprocessor=data_preprocessor)
                if data_preprocessor is not None
                else module,
            )
        super().__init__(module=module)
        if scales is not None:
            scales = tuple(int(s) for s in scales)
            if not scales or any(s <= 0 for s in scales) or len(set(scales)) != len(scales):
                raise ValueError(
                    f'tta_model.scales must be distinct positive short sides, got {scales}'
                )
        self.scales = scales
        self.flip = bool(flip)
        self.flip_label_map = _as_label_map(flip_label_map)
        if self.flip_label_map and not self.flip:
            raise ValueError('tta_model.flip_label_map is set but flip=False; drop one of them')
        num_classes = self._num_classes()
        if num_classes is not None:
            self._perm = flip_permutation(num_classes, self.flip_label_map)
        else:
            self._perm = None
        self.expected_views = [
            (scale, flipped)
            for scale in (scales if scales is not None else (None,))
            for flipped in ((False, True) if self.flip else (False,))
        ]
        if view_weights is not None and len(view_weights) != len(self.expected_views):
            raise ValueError(
                f'tta_model.view_weights has {len(view_weights)} entries for '
                f'{len(self.expected_views)} views {self.expected_views}'
            )
        self.view_weights = None if view_weights is None else [float(w) for w in view_weights]
        self.box_atol = float(box_atol)

    def _num_classes(self) -> Optional[int]:
        head = getattr(getattr(self.module, 'roi_head', None), 'bbox_head', None)
        return getattr(head, 'num_classes', None)

    # ---------------------------------------------------------------- test step
    def test_step(self, data: dict) -> list:
        """Run the detector on every view and merge them.

        Args:
            data (dict): ``inputs`` and ``data_samples``, each a list over the
                ``V`` views of a list (or tuple, as ``pseudo_collate``
                transposes them) over the clips of the batch.

        Returns:
            list: one merged data sample per clip.
        """
        if not isinstance(data, dict) or 'data_samples' not in data:
            raise TypeError(
                'SpatioTemporalTTAModel needs batches from a TestTimeAug pipeline: a dict of '
                f"'inputs' and 'data_samples' per view, got {type(data).__name__}"
            )
        num_views = len(data['data_samples'])
        predictions = []
        for view in range(num_views):
            view_data = {key: list(value[view]) for key, value in data.items()}
            for sample in view_data['data_samples']:
                # Keep the flag for merge_preds, hide it from the head (see module docstring).
                flipped = bool(sample.metainfo.get('flip', False))
                sample.set_metainfo({TTA_FLIP_KEY: flipped, 'flip': False})
            predictions.append(self.module.test_step(view_data))
        return self.merge_preds([list(clip_views) for clip_views in zip(*predictions)])

    def _view_key(self, sample) -> Tuple[Optional[int], bool]:
        height, width = sample.metainfo['img_shape'][:2]
        scale = min(int(height), int(width)) if self.scales is not None else None
        return scale, bool(sample.metainfo.get(TTA_FLIP_KEY, False))

    def merge_preds(self, data_samples_list: List[Sequence]) -> list:
        """Merge the views of every clip of the batch.

        Args:
            data_samples_list: per clip, its ``V`` predicted views.

        Returns:
            list: one data sample per clip (the unflipped first-scale view's,
            carrying the merged ``pred_instances``: reference boxes ``(N, 4)``, mean
            scores ``(N, K)``).
        """
        return [self._merge_clip(views) for views in data_samples_list]

    def _merge_clip(self, views: Sequence):
        clip = views[0].metainfo.get('img_key', '<clip>')
        keys = [self._view_key(view) for view in views]
        if sorted(keys, key=repr) != sorted(self.expected_views, key=repr):
            raise ValueError(
                f'clip {clip!r}: the TTA pipeline gave views (short side, flip) {keys} but '
                f'tta_model expects {self.expected_views} (scales={self.scales}, '
                f'flip={self.flip}); make tta_pipeline resize to the same short sides and flip '
                'the same way as tta_model'
            )
        boxes, scores, weights = [], [], []
        for view, key in zip(views, keys):
            pred = view.pred_instances
            view_boxes = pred.bboxes
            view_scores = pred.scores  # (N, K)
            if key[1]:
                view_boxes = unflip_boxes(view_boxes, view.metainfo.get('crop_quadruple'))
                view_scores = view_scores[:, self._permutation(view_scores.shape[1], clip)]
            boxes.append(view_boxes)
            scores.append(view_scores)
            if self.view_weights is not None:
                weights.append(self.view_weights[self.expected_views.index(key)])
        # Reference: the unflipped view at the first scale (its boxes and meta are kept).
        reference = keys.index(self.expected_views[0])
        for key, view_boxes in zip(keys, boxes):
            if view_boxes.shape != boxes[reference].shape:
                raise ValueError(
                    f'clip {clip!r}: view {key} has {view_boxes.shape[0]} proposals but view '
                    f'{keys[reference]} has {boxes[reference].shape[0]}; every view must keep '
                    'the same proposals'
                )
            gap = (view_boxes - boxes[reference]).abs().max() if view_boxes.numel() else 0.0
            if float(gap) > self.box_atol:
                raise ValueError(
                    f'clip {clip!r}: after undoing scale and flip, the boxes of view {key} differ '
                    f'from view {keys[reference]} by {float(gap):.4g} (> box_atol '
                    f'{self.box_atol}); a transform of the TTA pipeline moves boxes in a way the '
                    'TTA model does not undo (crop?)'
                )
        merged = views[reference]
        merged.pred_instances = InstanceData(
            bboxes=boxes[reference], scores=merge_view_scores(scores, weights or None)
        )
        merged.set_metainfo({TTA_FLIP_KEY: False, 'tta_views': keys})
        return merged

    def _permutation(self, num_classes: int, clip: str) -> List[int]:
        if self._perm is None:
            self._perm = flip_permutation(num_classes, self.flip_label_map)
        if len(self._perm) != num_classes:
            raise ValueError(
                f'clip {clip!r}: the model scores {num_classes} classes, flip_label_map was '
                f'checked for {len(self._perm)}'
            )
        return self._perm


def build_tta_pipeline(
    test_pipeline: Sequence[dict],
    scales: Sequence[int] = DEFAULT_TTA_SCALES,
    flip: bool = True,
    flip_meta_keys: Sequence[str] = ('flip', 'flip_direction'),
) -> List[dict]:
    """Turn a test pipeline into its TTA version.

    The loading and sampling steps stay; ``Resize``/``Flip`` steps are
    replaced by a ``TestTimeAug`` over ``[Resize(short side s) for s in
    scales] x [Flip(0), Flip(1)]`` followed by the pipeline's remaining steps,
    whose ``PackActionInputs`` also packs the flip flag.

    Args:
        test_pipeline: the config's test pipeline (list of dicts).
        scales: short sides of the views.
        flip: add flipped views.
        flip_meta_keys: meta keys added to ``PackActionInputs``.

    Returns:
        list[dict]: the TTA pipeline.

    Raises:
        ValueError: the pipeline has no ``FormatShape`` (where the views start
            to be formatted).
    """
    steps = [dict(step) for step in test_pipeline]
    types = [step.get('type') for step in steps]
    if 'FormatShape' not in types:
        raise ValueError(
            f'test pipeline {types} has no FormatShape step; write tta_pipeline in the config'
        )
    start = types.index('FormatShape')
    loading = [s for s in steps[:start] if s.get('type') not in ('Resize', 'Flip')]
    tail = steps[start:]
    for step in tail:
        if step.get('type') == 'PackActionInputs':
            keys = tuple(step.get('meta_keys', ()))
            step['meta_keys'] = keys + tuple(k for k in flip_meta_keys if k not in keys)
    resizes = [dict(type='Resize', scale=(-1, int(s))) for s in scales]
    flips = [dict(type='Flip', flip_ratio=0.0)]
    if flip:
        flips.append(dict(type='Flip', flip_ratio=1.0))
    # TestTimeAug takes the product of its lists: one choice per list, so every
    # remaining step is a list of one.
    transforms = [resizes, flips] + [[step] for step in tail]
    return loading + [dict(type='TestTimeAug', transforms=transforms)]


def innermost_dataset(dataset_cfg: ConfigDict) -> ConfigDict:
    """The dataset config under any wrappers (``dataset=dict(dataset=...)``)."""
    while 'dataset' in dataset_cfg:
        dataset_cfg = dataset_cfg['dataset']
    return dataset_cfg


def apply_tta(cfg: Config) -> Config:
    """Wrap ``cfg.model`` in ``cfg.tta_model`` and test with ``cfg.tta_pipeline``, in place.

    As ``--tta`` of mmdet's and mmpretrain's ``tools/test.py``. Missing pieces
    get defaults: ``tta_model`` = :data:`DEFAULT_TTA_MODEL`, ``tta_pipeline`` =
    :func:`build_tta_pipeline` of the test pipeline with the ``scales`` and
    ``flip`` of ``tta_model``.

    Returns:
        Config: ``cfg``.
    """
    if 'tta_model' not in cfg:
        print_log(f'the config has no tta_model; using {DEFAULT_TTA_MODEL}', logger='current')
        cfg.tta_model = ConfigDict(DEFAULT_TTA_MODEL)
    dataset = innermost_dataset(cfg.test_dataloader.dataset)
    if 'tta_pipeline' not in cfg:
        scales = cfg.tta_model.get('scales', DEFAULT_TTA_SCALES)
        flip = cfg.tta_model.get('flip', True)
        cfg.tta_pipeline = build_tta_pipeline(dataset.pipeline, scales, flip)
        print_log(f'the config has no tta_pipeline; derived {cfg.tta_pipeline}', logger='current')
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    dataset.pipeline = cfg.tta_pipeline
    return cfg


__all__ = [
    'DEFAULT_TTA_MODEL',
    'DEFAULT_TTA_SCALES',
    'SpatioTemporalTTAModel',
    'apply_tta',
    'build_tta_pipeline',
    'innermost_dataset',
    'flip_permutation',
    'merge_view_scores',
    'unflip_boxes',
]
