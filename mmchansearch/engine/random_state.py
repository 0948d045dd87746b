"""Random generator states in training checkpoints, for an exact resume.

mmengine's resume restores the weights, the optimizers and the schedules,
but the random generators stay as the Runner seeded them at the start: a
resumed training then draws other random numbers than the uninterrupted one
would have (DMaskingNAS's and DNAS's Gumbel noise, AutoSlim's sampled
widths, dropout, the data workers' seeds) and ends elsewhere.
:class:`RandomStateHook` saves every generator's state (Python's, numpy's,
torch's CPU and CUDA ones, and the model's own, see :meth:`random_state`
below) with each checkpoint and restores it when training continues from
one, so a run killed at any point and resumed from its last epoch
checkpoint ends with the same weights as a run never interrupted.

Validation runs between a checkpoint and the next epoch, and is not redone
on resume; it draws from a copy of the state, restored afterwards, so it
never shifts the training's random numbers (its dataloader draws the
workers' seed, for one).

The states are stored as tensors and lists of numbers: checkpoints load
with ``weights_only=True`` (:func:`mmchansearch.fileio.load_checkpoint_file`).
A model with random generators of its own (AutoSlim's width sampler) has
``random_state() -> dict`` and ``load_random_state(dict)``, returning and
taking such plain values.
"""
from __future__ import annotations

import random

import numpy as np
import torch
from mmengine import dist
from mmengine.hooks import Hook
from mmengine.logging import MMLogger

from ..distributed import restore_rng, rng_state, unwrap
from ..registry import HOOKS

CHECKPOINT_KEY = 'random_state'


def capture_random_state(model: torch.nn.Module) -> dict:
    """This process's generator states and ``model``'s, as plain values."""
    _, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    state = dict(python=rng_state(random),
                 numpy=[keys.tolist(), int(pos), int(has_gauss),
                        float(gauss)],
                 torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    if hasattr(model, 'random_state'):
        state['model'] = model.random_state()
    return state


def restore_random_state(state: dict, model: torch.nn.Module) -> None:
    """Sets the generators to ``state`` (from :func:`capture_random_state`).
    """
    restore_rng(random, state['python'])
    keys, pos, has_gauss, gauss = state['numpy']
    np.random.set_state(('MT19937', np.asarray(keys, dtype=np.uint32), pos,
                         has_gauss, gauss))
    torch.set_rng_state(state['torch'])
    cuda = state.get('cuda')
    if cuda is not None and torch.cuda.is_available() and \
            len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    if 'model' in state and hasattr(model, 'load_random_state'):
        model.load_random_state(state['model'])


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Checkpoints the random generators; restores them on resume.

    After every training epoch each rank's state is taken (gathered to the
    main process, which writes the checkpoint); a training resumed from
    that checkpoint restores its own rank's state before the first epoch.
    Validation runs on a copy of the state.
    """
    priority = 'VERY_HIGH'  # its epoch state is taken before the saving

    def __init__(self) -> None:
        self._epoch_states: tuple[int, list[dict]] | None = None
        self._loaded: tuple[int | None, list[dict] | None] | None = None
        self._outside_val: dict | None = None

    def after_train_epoch(self, runner) -> None:
        state = capture_random_state(unwrap(runner.model))
        states = dist.all_gather_object(state) \
            if dist.get_world_size() > 1 else [state]
        self._epoch_states = (runner.iter, states)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._epoch_states is not None and \
                self._epoch_states[0] == runner.iter:
            states = self._epoch_states[1]
        else:  # saved within an epoch: the main process's state
            states = [capture_random_state(unwrap(runner.model))]
        checkpoint[CHECKPOINT_KEY] = states

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = ((checkpoint.get('meta') or {}).get('iter'),
                        checkpoint.get(CHECKPOINT_KEY))

    def before_train(self, runner) -> None:
        iteration, states = self._loaded or (None, None)
        self._loaded = None
        if iteration is None or iteration != runner.iter or not iteration:
            return  # not resumed (loaded weights only, or nothing)
        if not states:
            MMLogger.get_current_instance().warning(
                'the resumed checkpoint holds no random generator states '
                '(written by an older version): the training continues '
                'with other random numbers than an uninterrupted run.')
            return
        rank, world = dist.get_rank(), dist.get_world_size()
        state = states[rank] if len(states) == world else states[0]
        restore_random_state(state, unwrap(runner.model))

    def before_val(self, runner) -> None:
        self._outside_val = capture_random_state(unwrap(runner.model))

    def after_val(self, runner) -> None:
        if self._outside_val is not None:
            restore_random_state(self._outside_val, unwrap(runner.model))
            self._outside_val = None
