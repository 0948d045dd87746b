"""The held-out batches a search scores on hold the same images whatever
the number of processes, also with a shuffling sampler (a class-sorted
held-out set must not give class-pure batches on several ranks)."""
import pytest
from mmengine.dataset import DefaultSampler, pseudo_collate
from torch.utils.data import DataLoader, Dataset

from mmchansearch.engine import held_out


class SortedByClass(Dataset):
    """20 items, the first 10 of class 0, the rest of class 1."""

    def __len__(self) -> int:
        return 20

    def __getitem__(self, index: int) -> dict:
        return dict(index=index, label=int(index >= 10))


def _loader(shuffle: bool) -> DataLoader:
    dataset = SortedByClass()
    return DataLoader(dataset, batch_size=4, collate_fn=pseudo_collate,
                      sampler=DefaultSampler(dataset, shuffle=shuffle,
                                             seed=3))


def _indices(batches: list[dict]) -> list[list[int]]:
    return [list(map(int, b['index'])) for b in batches]


@pytest.mark.parametrize('shuffle', [False, True])
@pytest.mark.parametrize('num_batches', [None, 3])
def test_two_ranks_deal_out_one_process_batches(monkeypatch, shuffle,
                                                num_batches):
    one = _indices(held_out.held_out_batches(_loader(shuffle), num_batches))
    iterated = _indices(list(_loader(shuffle)))  # the loader itself
    assert one == iterated[:num_batches]
    dealt = {}
    for rank in (0, 1):
        monkeypatch.setattr(held_out.dist, 'get_world_size', lambda: 2)
        monkeypatch.setattr(held_out.dist, 'get_rank', lambda r=rank: r)
        dealt[rank] = _indices(held_out.held_out_batches(_loader(shuffle),
                                                         num_batches))
    assert dealt[0] == one[0::2]
    assert dealt[1] == one[1::2]


def test_a_shuffled_class_sorted_set_gives_mixed_batches_on_every_rank(
        monkeypatch):
    monkeypatch.setattr(held_out.dist, 'get_world_size', lambda: 2)
    for rank in (0, 1):
        monkeypatch.setattr(held_out.dist, 'get_rank', lambda r=rank: r)
        batches = held_out.held_out_batches(_loader(True), None)
        labels = [set(map(int, b['label'])) for b in batches]
        assert any(len(s) == 2 for s in labels), labels
    # the same dataset in order: the first batches are class-pure
    monkeypatch.setattr(held_out.dist, 'get_rank', lambda: 0)
    in_order = held_out.held_out_batches(_loader(False), None)
    assert set(map(int, in_order[0]['label'])) == {0}


def test_the_one_process_order_is_the_samplers_first_epoch():
    loader = _loader(True)
    assert held_out.one_process_order(loader) == list(iter(loader.sampler))
    assert held_out.one_process_order(_loader(False)) == list(range(20))
