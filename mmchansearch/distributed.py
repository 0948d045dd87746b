"""Distributed behaviour of every algorithm, in one place.

All ranks must train the same subnet at every step: they share one random
generator seeded from rank 0. Algorithms run several forward/backward passes
per step (one per subnet), which DDP's per-forward gradient hooks do not fit;
instead gradients are accumulated locally and averaged once before the step.
"""
from __future__ import annotations

import random
from collections.abc import Iterable

import torch
from mmengine import dist
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside an mmengine model wrapper (DDP), else the model."""
    from mmengine.model import is_model_wrapper
    return model.module if is_model_wrapper(model) else model


def shared_rng(seed: int | None = None) -> random.Random:
    """A generator in the same state on every rank.

    Args:
        seed: the seed; when None, rank 0 draws one from Python's global
            generator, which the Runner seeds from ``randomness.seed``.
            Either way rank 0's value is broadcast.
    """
    if seed is None:
        seed = random.randrange(2**31)
    values = [seed]
    if dist.get_world_size() > 1:
        dist.broadcast_object_list(values, src=0)
    return random.Random(values[0])


def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Averages the gradients of ``params`` over all ranks (no-op alone)."""
    world_size = dist.get_world_size()
    if world_size == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    by_kind: dict = {}
    for grad in grads:
        by_kind.setdefault((grad.dtype, grad.device), []).append(grad)
    for group in by_kind.values():
        flat = _flatten_dense_tensors(group)
        dist.all_reduce(flat, op='mean')
        for grad, synced in zip(group, _unflatten_dense_tensors(flat, group)):
            grad.copy_(synced)
