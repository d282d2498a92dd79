"""ClassBalancedSampler: balance on a 50:1 long tail, determinism, disjoint rank shards."""

import math

import numpy as np
import pytest
from mmaction.registry import DATA_SAMPLERS
from mmengine.dataset import BaseDataset, ConcatDataset, pseudo_collate
from torch.utils.data import DataLoader

from pcca_plugin.datasets import ClassBalancedSampler

#: 50:1 long tail: samples per class.
CLASS_SIZES = (500, 100, 10)
NUM_DRAWS = 30000
#: Tolerance on a class frequency: 5 standard deviations of a binomial proportion.
NUM_SIGMAS = 5


class LabelledList:
    """A dataset that only knows its samples' label sets (what the sampler reads)."""

    def __init__(self, labels):
        self.labels = labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, idx):
        return dict(idx=idx, labels=self.labels[idx])

    def get_cat_ids(self, idx):
        return list(self.labels[idx])


def long_tail_dataset():
    labels = [[c] for c, size in enumerate(CLASS_SIZES) for _ in range(size)]
    labels += [[]] * 50  # frames without actions are never drawn
    return LabelledList(labels)


def test_each_class_is_drawn_equally_often_on_a_50_to_1_tail():
    dataset = long_tail_dataset()
    assert CLASS_SIZES[0] / CLASS_SIZES[-1] == 50
    sampler = DATA_SAMPLERS.build(
        dict(
            type='ClassBalancedSampler',
            dataset=dataset,
            num_samples=NUM_DRAWS,
            seed=0,
            rank=0,
            world_size=1,
        )
    )
    indices = list(sampler)
    assert len(indices) == len(sampler) == NUM_DRAWS
    drawn_classes = np.array([dataset.labels[i][0] if dataset.labels[i] else -1 for i in indices])
    assert (drawn_classes >= 0).all()
    frequencies = np.bincount(drawn_classes, minlength=len(CLASS_SIZES)) / NUM_DRAWS
    p = 1 / len(CLASS_SIZES)
    tolerance = NUM_SIGMAS * math.sqrt(p * (1 - p) / NUM_DRAWS)
    np.testing.assert_allclose(frequencies, p, atol=tolerance)
    # Within the rare class every sample gets drawn (uniformly over its members).
    rare = [i for i, c in zip(indices, drawn_classes) if c == len(CLASS_SIZES) - 1]
    assert len(set(rare)) == CLASS_SIZES[-1]
    # A multi-label sample is reachable through each of its classes.
    multi = LabelledList([[0, 1]] + [[0]] * 9)
    draws = list(ClassBalancedSampler(multi, num_samples=4000, seed=1, rank=0, world_size=1))
    assert abs(np.mean(np.array(draws) == 0) - (0.5 + 0.5 / 10)) < 0.05


def test_same_seed_and_epoch_same_order_other_epoch_other_order():
    dataset = long_tail_dataset()

    def order(seed, epoch):
        sampler = ClassBalancedSampler(dataset, num_samples=200, seed=seed, rank=0, world_size=1)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert order(3, 0) == order(3, 0)
    assert order(3, 1) == order(3, 1)
    assert order(3, 0) != order(3, 1)
    assert order(3, 0) != order(4, 0)


def test_two_ranks_take_disjoint_draws_of_one_global_sequence():
    dataset = long_tail_dataset()
    num_samples = 101  # odd: rounded up to 102 draws, 51 per rank
    single = ClassBalancedSampler(dataset, num_samples=102, seed=5, rank=0, world_size=1)
    ranks = [
        ClassBalancedSampler(dataset, num_samples=num_samples, seed=5, rank=r, world_size=2)
        for r in (0, 1)
    ]
    for sampler in [single, *ranks]:
        sampler.set_epoch(2)
    global_order = list(single)
    shards = [list(s) for s in ranks]
    assert [len(s) for s in shards] == [len(s) for s in ranks] == [51, 51]
    # Rank r owns draw positions r, r + 2, ...: no draw is given to both ranks and
    # together they are exactly the global sequence.
    assert shards[0] == global_order[0::2] and shards[1] == global_order[1::2]
    assert shards[0] != shards[1]
    with pytest.raises(ValueError, match='rank 2'):
        ClassBalancedSampler(dataset, seed=0, rank=2, world_size=2)


def test_works_in_a_real_dataloader_and_rejects_unlabelled_data():
    dataset = long_tail_dataset()
    sampler = ClassBalancedSampler(dataset, num_samples=64, seed=0, rank=0, world_size=1)
    loader = DataLoader(dataset, batch_size=16, sampler=sampler, collate_fn=pseudo_collate)
    batches = list(loader)
    assert len(batches) == 4
    assert sum(len(batch['idx']) for batch in batches) == 64
    assert all(labels for batch in batches for labels in batch['labels'])  # never unlabelled
    with pytest.raises(ValueError, match='no sample has a label'):
        ClassBalancedSampler(LabelledList([[], []]), seed=0, rank=0, world_size=1)
    with pytest.raises(TypeError, match='get_cat_ids'):
        ClassBalancedSampler([1, 2, 3], seed=0, rank=0, world_size=1)


class LabelledBaseDataset(BaseDataset):
    """A real mmengine dataset of label sets, the parts of a train + val ``ConcatDataset``."""

    def __init__(self, labels):
        self.labels = labels
        super().__init__(serialize_data=False)

    def load_data_list(self):
        return [dict(labels=list(labels)) for labels in self.labels]

    def get_cat_ids(self, idx):
        return self.get_data_info(idx)['labels']


def test_draws_through_mmengines_concat_dataset_of_train_and_val():
    """The train + val phase-2 config samples mmengine's ConcatDataset: both parts count."""
    train = LabelledBaseDataset([[0]] * 90 + [[1]] * 10)
    val = LabelledBaseDataset([[1]] * 5 + [[2]] * 5 + [[]] * 3)
    concat = ConcatDataset([train, val])
    sampler = ClassBalancedSampler(concat, num_samples=NUM_DRAWS, seed=0, rank=0, world_size=1)
    assert sorted(sampler.members) == [0, 1, 2]
    assert sampler.members[1].tolist() == list(range(90, 105))  # 10 in train, 5 in val
    assert sampler.members[2].tolist() == list(range(105, 110))  # val only
    draws = list(sampler)
    counts = np.bincount([concat.get_data_info(i)['labels'][0] for i in draws], minlength=3)
    expected = NUM_DRAWS / 3
    sigma = math.sqrt(NUM_DRAWS * (1 / 3) * (2 / 3))
    assert np.all(np.abs(counts - expected) <= NUM_SIGMAS * sigma), counts
