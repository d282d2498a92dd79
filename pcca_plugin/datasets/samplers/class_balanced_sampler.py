"""Class-balanced sampling for decoupled classifier re-training.

Kang et al., "Decoupling representation and classifier for long-tailed
recognition" (ICLR 2020), section 3.1 class-balanced sampling, as used by the
PCCA paper's second training phase (section 2.3): every draw first picks a
class uniformly among the classes present in the dataset, then a sample that
contains it, uniformly. A multi-label sample can be drawn through any of its
classes. Sampling is with replacement, so ``num_samples`` can exceed the
number of samples.

Sharding follows mmengine's ``DefaultSampler``: the global sequence of
``total_size`` draws (``num_samples`` rounded up to a multiple of the world
size) is the same on every rank for a given seed and epoch, and rank ``r``
takes positions ``r, r + world_size, ...``; no draw goes to two ranks.
"""

import math
from typing import Dict, Iterator, List, Optional, Sized

import numpy as np
from mmaction.registry import DATA_SAMPLERS
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.logging import MMLogger
from torch.utils.data import Sampler


def has_cat_ids(dataset) -> bool:
    """Whether :func:`cat_ids` can answer for ``dataset``."""
    if hasattr(dataset, 'get_cat_ids'):
        return True
    parts = getattr(dataset, 'datasets', None)
    return (
        parts is not None
        and hasattr(dataset, '_get_ori_dataset_idx')
        and all(has_cat_ids(part) for part in parts)
    )


def cat_ids(dataset, idx: int) -> List[int]:
    """``dataset.get_cat_ids(idx)``, also through mmengine's ``ConcatDataset`` (train + val)."""
    if hasattr(dataset, 'get_cat_ids'):
        return dataset.get_cat_ids(idx)
    part, part_idx = dataset._get_ori_dataset_idx(idx)
    return cat_ids(dataset.datasets[part], part_idx)


def class_to_indices(dataset: Sized) -> Dict[int, np.ndarray]:
    """``{class id: int64 (n_c,) indices of the samples containing it}`` via ``get_cat_ids``."""
    if not has_cat_ids(dataset):
        raise TypeError(
            f'{type(dataset).__name__} has no get_cat_ids(idx); the class-balanced '
            'sampler needs the label set of every sample'
        )
    members: Dict[int, List[int]] = {}
    for idx in range(len(dataset)):
        for cat in set(cat_ids(dataset, idx)):
            members.setdefault(int(cat), []).append(idx)
    return {cat: np.asarray(members[cat], dtype=np.int64) for cat in sorted(members)}


def class_balanced_draws(
    members: Dict[int, np.ndarray], num_draws: int, rng: np.random.Generator
) -> np.ndarray:
    """Draw ``num_draws`` indices: a uniform class, then a uniform member -> int64 (num_draws,)."""
    classes = list(members)
    class_choice = rng.integers(0, len(classes), size=num_draws)  # (num_draws,)
    draws = np.empty(num_draws, dtype=np.int64)
    for position, class_index in enumerate(class_choice):
        pool = members[classes[class_index]]
        draws[position] = pool[rng.integers(0, len(pool))]
    return draws


@DATA_SAMPLERS.register_module()
class ClassBalancedSampler(Sampler):
    """Each draw: a class with equal probability, then a sample that contains it.

    Args:
        dataset: a dataset with ``get_cat_ids(idx) -> list[int]``
            (e.g. :class:`~pcca_plugin.datasets.MultiSportsDataset`). Samples
            without any label (frames without actions) are never drawn.
        num_samples: draws per epoch over all ranks (default: ``len(dataset)``).
        seed: random seed, shared by all ranks (default: a synchronised random one).
        rank: this process's rank (default: from ``mmengine.dist.get_dist_info``).
        world_size: number of processes (default: from ``get_dist_info``).
    """

    def __init__(
        self,
        dataset: Sized,
        num_samples: Optional[int] = None,
        seed: Optional[int] = None,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
    ) -> None:
        dist_rank, dist_world_size = get_dist_info()
        self.rank = dist_rank if rank is None else rank
        self.world_size = dist_world_size if world_size is None else world_size
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f'rank {self.rank} is outside world_size {self.world_size}')
        self.dataset = dataset
        self.seed = sync_random_seed() if seed is None else seed
        self.epoch = 0
        self.members = class_to_indices(dataset)
        if not self.members:
            raise ValueError(
                f'{type(dataset).__name__}: no sample has a label, nothing to '
                'balance; check the annotation file'
            )
        requested = len(dataset) if num_samples is None else int(num_samples)
        if requested < 1:
            raise ValueError(f'num_samples must be >= 1, got {num_samples}')
        self.num_samples = math.ceil(requested / self.world_size)  # per rank
        self.total_size = self.num_samples * self.world_size
        counts = {cat: len(idx) for cat, idx in self.members.items()}
        MMLogger.get_current_instance().info(
            f'ClassBalancedSampler: {len(counts)} classes, samples per class from '
            f'{min(counts.values())} to {max(counts.values())}; {self.total_size} draws per '
            f'epoch, {self.num_samples} on rank {self.rank}'
        )

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        draws = class_balanced_draws(self.members, self.total_size, rng)  # (total_size,)
        return iter(draws[self.rank : self.total_size : self.world_size].tolist())

    def __len__(self) -> int:
        """Draws on this rank per epoch."""
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use a different (reproducible) draw sequence for each epoch."""
        self.epoch = epoch
