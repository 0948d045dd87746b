"""Batch-norm statistics of subnets.

A supernet's shared running statistics were accumulated over many widths and
fit none of them; a subnet is evaluated either after recalibrating them on a
few training batches, or with the statistics of the evaluated batch itself.
A validation during training recalibrates inside :func:`kept_statistics`, so
training continues from the statistics it left (and a training resumed from
the checkpoint saved before that validation continues from the same ones).
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from mmengine import dist
from mmengine.model import BaseModel
from torch.nn.modules.batchnorm import _BatchNorm


def _batch_norms(model: torch.nn.Module) -> list[_BatchNorm]:
    return [m for m in model.modules() if isinstance(m, _BatchNorm)]


@torch.no_grad()
def recalibrate_bn(model: BaseModel, batches: Iterable[dict],
                   num_batches: int) -> int:
    """Recomputes BN running statistics as an exact average over batches.

    Args:
        model: the model at the widths to calibrate (an mmengine model with
            a data preprocessor).
        batches: dataloader batches (typically the training set).
        num_batches: how many batches to average.

    With several ranks each averages its own batches and the statistics
    are then averaged over all ranks (weighted by their batch counts), so
    every rank holds the statistics of all batches seen: scores computed
    after it do not depend on the number of processes.

    Returns:
        The number of batches used (on this rank).
    """
    norms = _batch_norms(model)
    momenta = [bn.momentum for bn in norms]
    was_training = model.training
    model.eval()
    used = 0
    try:
        for bn in norms:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average
            bn.train()
        for batch in itertools.islice(batches, num_batches):
            data = model.data_preprocessor(batch, False)
            model(data['inputs'], mode='tensor')
            used += 1
    finally:
        for bn, momentum in zip(norms, momenta):
            bn.momentum = momentum
        model.train(was_training)
    _average_over_ranks(norms, used)
    return used


def _average_over_ranks(norms: list[_BatchNorm], used: int) -> None:
    """Running means and variances averaged over ranks, weighted by
    ``used`` (each rank's batch count); nothing alone."""
    if dist.get_world_size() == 1 or not norms:
        return
    stats = [t for bn in norms for t in (bn.running_mean, bn.running_var)]
    flat = torch.cat([t.detach().double().flatten() * used for t in stats]
                     + [torch.tensor([float(used)], dtype=torch.float64,
                                     device=stats[0].device)])
    dist.all_reduce(flat)
    flat = flat[:-1] / flat[-1]
    offset = 0
    for tensor in stats:
        tensor.copy_(flat[offset:offset + tensor.numel()].view_as(tensor))
        offset += tensor.numel()


@contextmanager
def kept_statistics(model: torch.nn.Module) -> Iterator[None]:
    """BN running statistics are put back as they were on exit (undoing a
    :func:`recalibrate_bn` inside)."""
    norms = _batch_norms(model)
    saved = [{name: buffer.clone() for name, buffer in bn.named_buffers(
        recurse=False)} for bn in norms]
    try:
        yield
    finally:
        with torch.no_grad():
            for bn, buffers in zip(norms, saved):
                for name, value in buffers.items():
                    getattr(bn, name).copy_(value)


@contextmanager
def batch_statistics(model: torch.nn.Module) -> Iterator[None]:
    """BN layers normalize with the current batch's statistics.

    Running statistics are left untouched (momentum 0 while inside).
    """
    norms = _batch_norms(model)
    saved = [(bn.training, bn.momentum) for bn in norms]
    try:
        for bn in norms:
            bn.train()
            bn.momentum = 0.0
        yield
    finally:
        for bn, (training, momentum) in zip(norms, saved):
            bn.train(training)
            bn.momentum = momentum
