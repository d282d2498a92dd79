"""A person detector built from an mmdet config + checkpoint, run on batches of frames.

The detector may be

* a single-class ``person`` model (``configs/det/*person*.py``), e.g. fine-tuned
  on MultiSports or made from a COCO checkpoint by :func:`slice_person_checkpoint`;
* any multi-class mmdet detector whose class names include ``person`` (e.g. the
  stock 80-class COCO Faster R-CNN): only the boxes labelled ``person`` are kept
  (a test-time filter).

Class names are taken from the checkpoint's ``meta['dataset_meta']['classes']``
(mmdet 3.x), else its ``meta['CLASSES']`` (mmdet 2.x checkpoints), else the
``metainfo`` of the config's test dataset, else the ``METAINFO`` of that
dataset class; a list without ``person`` is an error naming the checkpoint.

Reducing an 80-class COCO head to person (:func:`slice_person_checkpoint`):
mmdet's ``Shared2FCBBoxHead`` ends with ``fc_cls`` (``C + 1`` outputs, the
background last) and ``fc_reg`` (``4 C`` outputs, class-specific deltas).
Keeping the rows ``[person, background]`` of ``fc_cls`` and the four rows of
the person deltas of ``fc_reg`` gives a ``num_classes=1`` head whose logits are
exactly the person and background logits of the COCO head; only the softmax
changes (over two classes instead of 81), so the person scores of the sliced
model are higher than the COCO model's person scores for the same box.
"""

import os
import os.path as osp
import tempfile
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import load_state_dict

from ..compat import load_mmengine_checkpoint

#: Class name the detector must have (compared case-insensitively).
PERSON_CLASS_NAME = 'person'
#: Lowest score kept in a proposal file (the official MultiSports person boxes keep >= 0.05).
DEFAULT_MIN_SCORE = 0.05
#: Columns of a proposal row: x1, y1, x2, y2, score.
PROPOSAL_COLUMNS = 5
#: State-dict prefix of the final box head of a two-stage mmdet detector.
DEFAULT_BBOX_HEAD_PREFIX = 'roi_head.bbox_head.'
#: Colour of the person class in mmdet visualisations (COCO palette entry 0).
PERSON_PALETTE = [(220, 20, 60)]
#: Box coordinates per class in a class-specific regression layer.
BOX_DELTAS = 4


class NoPersonClassError(ValueError):
    """The detector's classes do not include ``person``."""


def find_person_class(classes: Optional[Sequence[str]], source: str) -> int:
    """Index of the ``person`` class in a detector's class names.

    Args:
        classes: class names, or None when none are known.
        source: checkpoint/config path for the error message.

    Raises:
        NoPersonClassError: no class is called ``person`` (case-insensitive).
    """
    names = [str(name).strip().lower() for name in (classes or ())]
    if PERSON_CLASS_NAME not in names:
        shown = list(classes or ())
        preview = shown[:10] + (['...'] if len(shown) > 10 else [])
        raise NoPersonClassError(
            f'{source}: the detector has no {PERSON_CLASS_NAME!r} class (its {len(shown)} '
            f'classes: {preview}). Use a person detector (configs/det/) or a COCO checkpoint, '
            "and make sure the checkpoint's meta['dataset_meta']['classes'] or the config's "
            'test_dataloader.dataset.metainfo names the classes.'
        )
    return names.index(PERSON_CLASS_NAME)


def _config_classes(cfg: Config) -> Optional[Sequence[str]]:
    """Class names from the config's test dataset (``metainfo`` or the class's ``METAINFO``)."""
    dataset = cfg.get('test_dataloader', {}).get('dataset', {})
    while 'dataset' in dataset and 'metainfo' not in dataset:  # dataset wrappers
        dataset = dataset['dataset']
    metainfo = dataset.get('metainfo') or {}
    if metainfo.get('classes'):
        return tuple(metainfo['classes'])
    if dataset.get('type'):
        from mmdet.registry import DATASETS

        dataset_cls = DATASETS.get(dataset['type'])
        if dataset_cls is not None:
            return tuple(getattr(dataset_cls, 'METAINFO', {}).get('classes', ())) or None
    return None


def checkpoint_classes(checkpoint: Dict) -> Optional[Sequence[str]]:
    """Class names stored in an mmdet checkpoint's meta, or None."""
    meta = checkpoint.get('meta') or {}
    dataset_meta = meta.get('dataset_meta') or {}
    classes = dataset_meta.get('classes') or dataset_meta.get('CLASSES') or meta.get('CLASSES')
    return tuple(classes) if classes else None


class PersonDetector:
    """Batched person detection with an mmdet detector.

    Args:
        config: mmdet config file or :class:`~mmengine.config.Config`.
        checkpoint: checkpoint file whose weights fit the config (loaded strictly).
        device: torch device, e.g. ``'cpu'`` or ``'cuda:0'``.
        cfg_options: overrides merged into the config (``--cfg-options``).
        min_score: boxes scoring below it are dropped.

    Attributes:
        classes (tuple[str]): the detector's class names.
        person_index (int): index of ``person`` among them.
        fingerprint (dict): what identifies the detector and its settings;
            proposal shards made with another fingerprint are not reused.
    """

    def __init__(
        self,
        config: Union[str, Config],
        checkpoint: str,
        device: str = 'cpu',
        cfg_options: Optional[Dict] = None,
        min_score: float = DEFAULT_MIN_SCORE,
    ):
        from mmcv.transforms import Compose
        from mmdet.registry import MODELS

        cfg = Config.fromfile(config) if isinstance(config, str) else config.copy()
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        config_name = config if isinstance(config, str) else (cfg.filename or '<Config>')
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'{checkpoint}: no such checkpoint file')
        scope = cfg.get('default_scope', 'mmdet')
        # Build in the config's scope without changing the caller's default scope.
        with DefaultScope.overwrite_default_scope(scope):
            model = MODELS.build(cfg.model)
            pipeline = Compose(_ndarray_test_pipeline(cfg, config_name))
        ckpt = load_mmengine_checkpoint(checkpoint, map_location='cpu')
        if not isinstance(ckpt, dict):
            raise ValueError(
                f'{checkpoint}: not an mmdet checkpoint (holds '
                f'{type(ckpt).__name__}, expected a dict with a state_dict)'
            )
        state_dict = ckpt.get('state_dict', ckpt)
        state_dict = {
            key[len('module.') :] if key.startswith('module.') else key: value
            for key, value in state_dict.items()
        }
        try:
            load_state_dict(model, state_dict, strict=True)
        except RuntimeError as exc:
            raise RuntimeError(
                f'{checkpoint} does not fit {config_name}: {exc}\nAn 80-class COCO '
                'checkpoint runs with the COCO config it was trained with (person boxes are '
                'filtered at test time), or with a configs/det/ person config after '
                'tools/det/person_checkpoint.py has reduced it to the person class.'
            ) from exc
        classes = checkpoint_classes(ckpt) or _config_classes(cfg)
        self.person_index = find_person_class(classes, checkpoint)
        num_classes = _head_num_classes(model)
        if num_classes is not None and num_classes != len(classes):
            raise ValueError(
                f'{checkpoint}: names {len(classes)} classes but the model of {config_name} '
                f'has num_classes={num_classes}; use the config the checkpoint was trained with'
            )
        self.classes = tuple(classes)
        self.min_score = float(min_score)
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.model.cfg = cfg
        self.model.dataset_meta = {'classes': self.classes}
        self.pipeline = pipeline
        self.fingerprint = {
            'config': osp.basename(config_name),
            'cfg_options': repr(sorted((cfg_options or {}).items())),
            'checkpoint': osp.basename(checkpoint),
            'checkpoint_bytes': osp.getsize(checkpoint),
            'person_index': self.person_index,
            'min_score': self.min_score,
        }

    @torch.no_grad()
    def detect(self, images: Sequence[np.ndarray]) -> List[np.ndarray]:
        """Person boxes of a batch of frames.

        Args:
            images: BGR ``uint8`` arrays ``(H, W, 3)``; sizes may differ.

        Returns:
            One ``np.ndarray[n, 5]`` float32 per image: ``[x1, y1, x2, y2,
            score]``, coordinates divided by the image width/height and
            clipped to [0, 1], scores >= ``min_score``, sorted by score
            descending.
        """
        if not images:
            return []
        packed = [
            self.pipeline(dict(img=image, img_id=index)) for index, image in enumerate(images)
        ]
        batch = {
            'inputs': [item['inputs'] for item in packed],
            'data_samples': [item['data_samples'] for item in packed],
        }
        results = self.model.test_step(batch)
        outputs = []
        for image, result in zip(images, results):
            instances = result.pred_instances
            keep = (instances.labels == self.person_index) & (instances.scores >= self.min_score)
            boxes = instances.bboxes[keep].cpu().numpy().astype(np.float64)  # (n, 4) pixels
            scores = instances.scores[keep].cpu().numpy().astype(np.float64)  # (n,)
            height, width = image.shape[:2]
            boxes = np.clip(boxes / np.array([width, height, width, height]), 0.0, 1.0)
            order = np.argsort(-scores, kind='stable')
            rows = np.concatenate([boxes[order], scores[order, None]], axis=1)  # (n, 5)
            outputs.append(rows.astype(np.float32).reshape(-1, PROPOSAL_COLUMNS))
        return outputs


def _head_num_classes(model: torch.nn.Module) -> Optional[int]:
    """``num_classes`` of a two-stage detector's box head (None for other detectors)."""
    roi_head = getattr(model, 'roi_head', None)
    bbox_head = getattr(roi_head, 'bbox_head', None)
    return getattr(bbox_head, 'num_classes', None)


def _ndarray_test_pipeline(cfg: Config, source: str) -> List[Dict]:
    """The config's test pipeline, loading from arrays and without annotation loading."""
    from mmdet.utils import get_test_pipeline_cfg

    try:
        pipeline = [dict(step) for step in get_test_pipeline_cfg(cfg)]
    except (RuntimeError, AttributeError, KeyError) as exc:
        raise ValueError(f'{source}: no test pipeline in test_dataloader.dataset ({exc})') from exc
    if not pipeline or 'LoadImage' not in str(pipeline[0].get('type', '')):
        raise ValueError(
            f'{source}: the test pipeline must start with an image loading step, '
            f'found {pipeline[:1]}'
        )
    pipeline[0] = dict(type='mmdet.LoadImageFromNDArray')
    return [step for step in pipeline if not str(step.get('type', '')).endswith('LoadAnnotations')]


def person_only_state_dict(
    state_dict: Dict[str, torch.Tensor],
    person_index: int,
    num_classes: int,
    prefix: str = DEFAULT_BBOX_HEAD_PREFIX,
) -> Dict[str, torch.Tensor]:
    """Slice a ``num_classes``-way box head down to ``person`` (+ background).

    Args:
        state_dict: weights of an mmdet two-stage detector.
        person_index: row of ``person`` in the classifier.
        num_classes: classes of the head (without background).
        prefix: state-dict prefix of the box head.

    Returns:
        A new state dict: ``fc_cls`` keeps rows ``[person_index, num_classes]``
        (``(2, D)``), ``fc_reg`` keeps rows ``4 p .. 4 p + 3`` (``(4, D)``)
        unless it is class-agnostic (4 rows, kept). Other tensors are shared.

    Raises:
        KeyError: the head's layers are missing (naming the keys looked for).
        ValueError: their shapes do not fit ``num_classes``.
    """
    sliced = dict(state_dict)
    cls_key, reg_key = prefix + 'fc_cls.weight', prefix + 'fc_reg.weight'
    for key in (cls_key, reg_key):
        if key not in state_dict:
            heads = sorted({k.rsplit('.', 2)[0] for k in state_dict if 'fc_cls' in k})
            raise KeyError(
                f'no {key!r} in the checkpoint (classifier layers found: {heads}); '
                'only single-box-head detectors such as Faster R-CNN can be sliced'
            )
    cls_rows = [person_index, num_classes]  # person, background (mmdet puts it last)
    reg_rows = list(range(BOX_DELTAS * person_index, BOX_DELTAS * (person_index + 1)))
    for suffix in ('weight', 'bias'):
        cls = state_dict[prefix + 'fc_cls.' + suffix]
        if cls.shape[0] != num_classes + 1:
            raise ValueError(
                f'{prefix}fc_cls.{suffix} has {cls.shape[0]} rows; a head with '
                f'{num_classes} classes has {num_classes + 1} (background last)'
            )
        sliced[prefix + 'fc_cls.' + suffix] = cls[cls_rows].clone()
        reg = state_dict[prefix + 'fc_reg.' + suffix]
        if reg.shape[0] == BOX_DELTAS * num_classes:
            sliced[prefix + 'fc_reg.' + suffix] = reg[reg_rows].clone()
        elif reg.shape[0] != BOX_DELTAS:
            raise ValueError(
                f'{prefix}fc_reg.{suffix} has {reg.shape[0]} rows; expected '
                f'{BOX_DELTAS * num_classes} (class-specific) or {BOX_DELTAS} '
                '(class-agnostic)'
            )
    return sliced


def slice_person_checkpoint(
    src: str,
    dst: str,
    classes: Optional[Sequence[str]] = None,
    prefix: str = DEFAULT_BBOX_HEAD_PREFIX,
) -> Dict:
    """Write a single-class ``person`` checkpoint made from a multi-class one.

    Args:
        src: e.g. mmdet's COCO Faster R-CNN X101-64x4d checkpoint.
        dst: where to write the person checkpoint (atomically).
        classes: the source's class names when its meta lacks them.
        prefix: state-dict prefix of the box head.

    Returns:
        The written checkpoint's meta.

    Raises:
        NoPersonClassError: the source's classes lack ``person``.
        ValueError: no class names are known for the source.
    """
    ckpt = load_mmengine_checkpoint(src, map_location='cpu')
    state_dict = ckpt.get('state_dict', ckpt)
    classes = tuple(classes) if classes else checkpoint_classes(ckpt)
    if not classes:
        raise ValueError(
            f'{src}: the checkpoint does not name its classes; pass them '
            '(--classes, e.g. --classes coco for the 80 COCO classes)'
        )
    person_index = find_person_class(classes, src)
    sliced = person_only_state_dict(state_dict, person_index, len(classes), prefix)
    meta = dict(ckpt.get('meta') or {})
    meta.pop('CLASSES', None)
    meta['dataset_meta'] = {'classes': (PERSON_CLASS_NAME,), 'palette': PERSON_PALETTE}
    meta['person_only'] = {
        'source': osp.basename(src),
        'source_classes': len(classes),
        'source_person_index': person_index,
    }
    folder = osp.dirname(osp.abspath(dst))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + osp.basename(dst), suffix='.tmp')
    os.close(fd)
    try:
        # Only the weights and meta: a fine-tuning run starts a new optimizer.
        torch.save({'meta': meta, 'state_dict': sliced}, tmp)
        os.replace(tmp, dst)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    return meta
