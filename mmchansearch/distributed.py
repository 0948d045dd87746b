"""Distributed behaviour of every algorithm, in one place.

All ranks must train the same subnet at every step: they share one random
generator seeded from rank 0. Algorithms run several forward/backward passes
per step (one per subnet), which DDP's per-forward gradient hooks do not fit;
instead gradients are accumulated locally and averaged once before the step.
A search stops on all ranks together when any rank meets a NaN or infinite
number (:func:`check_finite`).
"""
from __future__ import annotations

import random
from collections.abc import Iterable, Mapping

import torch
from mmengine import dist
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from .errors import ChannelSearchError, NonFiniteError


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


def rng_state(rng) -> list:
    """The state of a Python generator (a ``random.Random``, or the
    ``random`` module's own) as a plain list, fit for a checkpoint that
    loads with ``weights_only=True``."""
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def restore_rng(rng, state: list) -> None:
    """Sets a Python generator to a state from :func:`rng_state`."""
    version, internal, gauss = state
    rng.setstate((version, tuple(internal), gauss))


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


def run_on_main(fn):
    """``fn()`` on rank 0 alone, its result broadcast to every rank.

    A failure on rank 0 ends every rank: a user error (the toolbox's
    :class:`~mmchansearch.errors.ChannelSearchError`) is raised as itself
    everywhere, anything else as itself on rank 0 and as a RuntimeError
    naming it on the others, so no rank waits in the next collective for a
    rank that has stopped.
    """
    if dist.get_world_size() == 1:
        return fn()
    box = [None, None, None]  # result, user error, other failure's text
    if dist.is_main_process():
        try:
            box[0] = fn()
        except ChannelSearchError as err:
            box[1] = err
        except BaseException as err:
            box[2] = f'{type(err).__name__}: {err}'
            dist.broadcast_object_list(box, src=0)
            raise
    dist.broadcast_object_list(box, src=0)
    result, user_error, failure = box
    if user_error is not None:
        raise user_error
    if failure is not None:
        raise RuntimeError(f'rank 0 failed ({failure}); see its log.')
    return result


def check_finite(values: Mapping[str, float | torch.Tensor], step: str,
                 fix: str) -> None:
    """Stops a search on every rank when any rank holds a NaN or infinity.

    Every rank must call it at the same point (it reduces a flag over the
    ranks), so none waits for a rank that stopped.

    Args:
        values: name -> number or tensor (every element is checked).
        step: where the values come from, e.g. ``'greedy search step 3'``.
        fix: what the user can do, e.g. ``'lower the learning rate'``.

    Raises:
        NonFiniteError: on every rank, naming the non-finite values this
            rank saw (or that another rank saw some).
    """
    bad = {name: torch.as_tensor(value).detach().double()
           for name, value in values.items()}
    bad = {name: value for name, value in bad.items()
           if not bool(torch.isfinite(value).all())}
    flag = torch.tensor([float(len(bad))])
    dist.all_reduce(flag)  # a no-op on one process
    if not flag.item():
        return
    found = ', '.join(f'{name} = {_describe(value)}'
                      for name, value in list(bad.items())[:3]) or \
        'values on another rank'
    if len(bad) > 3:
        found += f' and {len(bad) - 3} more'
    raise NonFiniteError(f'{step}: non-finite {found}. {fix}; nothing was '
                         'written from these numbers.')


def _describe(value: torch.Tensor) -> str:
    if value.numel() == 1:
        return f'{value.item():g}'
    return (f'{int((~torch.isfinite(value)).sum())} of {value.numel()} '
            'values NaN/inf')


def run_on_every_rank(fn):
    """``fn()`` on every rank, then agreement on success before anything
    else: when any rank fails, every rank raises (the failing one its own
    error, the others a RuntimeError naming it), so no rank waits in a
    later collective for one that stopped.
    """
    if dist.get_world_size() == 1:
        return fn()
    try:
        result, failure = fn(), None
    except BaseException as err:
        result, failure = None, err
    reports = dist.all_gather_object(
        None if failure is None else f'{type(failure).__name__}: {failure}')
    if failure is not None:
        raise failure
    failed = [(rank, text) for rank, text in enumerate(reports) if text]
    if failed:
        rank, text = failed[0]
        raise RuntimeError(f'rank {rank} failed ({text}); see its log.')
    return result
