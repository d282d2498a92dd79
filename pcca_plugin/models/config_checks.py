"""Config-level consistency checks between the model and the datasets.

The RoI head checks its own parts at construction (see
:class:`~pcca_plugin.models.PCCARoIHead`); the dataset is not visible there,
so :func:`check_config_consistency` compares the model with the dataloaders of
a whole config. Tools call it right after ``Config.fromfile``.
"""

from typing import Iterator, Mapping, Tuple

DATALOADER_KEYS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _datasets(dataset_cfg: Mapping, path: str) -> Iterator[Tuple[str, Mapping]]:
    """Yield ``(config path, dataset cfg)`` through dataset wrappers."""
    if not isinstance(dataset_cfg, Mapping):
        return
    yield path, dataset_cfg
    if isinstance(dataset_cfg.get('dataset'), Mapping):  # RepeatDataset, ClassBalancedDataset
        yield from _datasets(dataset_cfg['dataset'], f'{path}.dataset')
    for index, inner in enumerate(dataset_cfg.get('datasets') or []):  # ConcatDataset
        yield from _datasets(inner, f'{path}.datasets[{index}]')


def check_config_consistency(cfg: Mapping) -> None:
    """Raise when channel or class counts disagree across a config.

    Checks ``model.roi_head``: extractor vs head ``in_channels``,
    ``roi_head.num_classes`` vs ``bbox_head.num_classes``, and every dataset
    (through wrappers) of the train/val/test dataloaders that states
    ``num_classes`` vs ``bbox_head.num_classes``.

    Args:
        cfg (Mapping): a loaded config (``mmengine.Config`` or dict).

    Raises:
        ValueError: a message naming both config keys and both values.
    """
    roi_head = cfg.get('model', {}).get('roi_head') or {}
    bbox_head = roi_head.get('bbox_head') or {}
    extractor = roi_head.get('bbox_roi_extractor') or {}
    head_classes = bbox_head.get('num_classes')
    head_channels = bbox_head.get('in_channels')
    extractor_channels = extractor.get('in_channels')
    if None not in (extractor_channels, head_channels) and extractor_channels != head_channels:
        raise ValueError(
            f'in_channels mismatch: model.roi_head.bbox_roi_extractor.in_channels='
            f'{extractor_channels} but model.roi_head.bbox_head.in_channels={head_channels}.'
        )
    if head_classes is None:
        return
    if roi_head.get('num_classes') not in (None, head_classes):
        raise ValueError(
            f'num_classes mismatch: model.roi_head.num_classes={roi_head["num_classes"]} but '
            f'model.roi_head.bbox_head.num_classes={head_classes}.'
        )
    for key in DATALOADER_KEYS:
        loader = cfg.get(key)
        if not isinstance(loader, Mapping):
            continue
        for path, dataset in _datasets(loader.get('dataset'), f'{key}.dataset'):
            classes = dataset.get('num_classes')
            if classes is not None and classes != head_classes:
                raise ValueError(
                    f'num_classes mismatch: {path}.num_classes={classes} but '
                    f'model.roi_head.bbox_head.num_classes={head_classes}; the classifier '
                    'must have one output per dataset class.'
                )


__all__ = ['check_config_consistency']
