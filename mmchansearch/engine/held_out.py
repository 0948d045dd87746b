"""The fixed batches a search works on: held-out batches it scores
networks on, training batches it recalibrates BN statistics on."""
from __future__ import annotations

import random
from collections.abc import Iterable

import torch
from mmengine import dist


def held_out_batches(dataloader: Iterable[dict],
                     num_batches: int | None) -> list[dict]:
    """The first ``num_batches`` raw batches of ``dataloader`` (None: all).

    They stay in the dataloader's compact form (uint8 images on the CPU) and
    are preprocessed where they are used.

    The batches are those one process iterating the loader's first epoch
    gets (the dataset in order, or in the order of a shuffling sampler and
    its seed), ``batch_size`` a batch, dealt out whole: rank r of W takes
    batches r, r + W, ... So every batch holds the same images whatever the
    number of processes (a class-sorted held-out set stays mixed on every
    rank), and scores that use a batch's own BN statistics, summed over the
    ranks, equal one process's.
    """
    if dist.get_world_size() == 1 or not hasattr(dataloader, 'dataset'):
        batches = []
        for i, batch in enumerate(dataloader):
            if num_batches is not None and i >= num_batches:
                break
            batches.append(batch)
        return batches
    return _dealt_batches(dataloader, one_process_order(dataloader),
                          num_batches)


def one_process_order(dataloader) -> list[int]:
    """The dataset indices one process's first epoch visits: in order, or
    shuffled as mmengine's ``DefaultSampler`` shuffles them (a permutation
    drawn from its ``seed``; epoch 0)."""
    size = len(dataloader.dataset)
    sampler = getattr(dataloader, 'sampler', None)
    if not getattr(sampler, 'shuffle', False):
        return list(range(size))
    generator = torch.Generator()
    generator.manual_seed(sampler.seed)
    return torch.randperm(size, generator=generator).tolist()


def calibration_batches(dataloader, num_batches: int,
                        seed: int = 0) -> list[dict]:
    """``num_batches`` batches of ``dataloader``'s dataset (training
    images) in a seeded random order, the same whatever the number of
    processes, dealt out whole to the ranks like :func:`held_out_batches`:
    BN statistics recalibrated on them and averaged over the ranks equal
    one process's.
    """
    order = list(range(len(dataloader.dataset)))
    random.Random(seed).shuffle(order)
    order = order[:num_batches * dataloader.batch_size]
    return _dealt_batches(dataloader, order, num_batches)


def _dealt_batches(dataloader, order: list[int],
                   num_batches: int | None) -> list[dict]:
    """Batches of ``batch_size`` images of ``order``; rank r of W takes
    batches r, r + W, ..."""
    dataset, size = dataloader.dataset, dataloader.batch_size
    starts = range(0, len(order), size)
    if num_batches is not None:
        starts = starts[:num_batches]
    return [dataloader.collate_fn([dataset[i] for i in order[start:start
                                                             + size]])
            for start in starts[dist.get_rank()::dist.get_world_size()]]
