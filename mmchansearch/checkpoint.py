"""Checkpoint state dicts: reading them and loading them strictly.

mmengine's ``load_from`` and ``load_checkpoint`` skip a tensor whose name
or shape does not match, with a warning; a partly random network would then
train or test as if it were the checkpoint's. Every load here refuses any
mismatch with one :class:`~mmchansearch.errors.CheckpointMismatchError`
naming the first offending tensor.
"""
from __future__ import annotations

import glob
import logging
import os

import torch
from mmengine.logging import print_log
from torch import nn

from .errors import CheckpointMismatchError
from .fileio import load_checkpoint_file


def read_checkpoint(checkpoint: str) -> dict:
    """Loads a checkpoint file on the CPU; a missing file is a clear error."""
    return load_checkpoint_file(checkpoint, map_location='cpu')


def state_dict_of(ckpt: dict) -> dict[str, torch.Tensor]:
    """The state dict inside a loaded checkpoint, without DDP prefixes."""
    state = ckpt.get('state_dict', ckpt)
    return {k.removeprefix('module.'): v for k, v in state.items()}


def state_mismatch(model: nn.Module, state: dict[str, torch.Tensor],
                   embed: bool = False) -> str | None:
    """What keeps ``state`` from loading into ``model`` exactly (None: it
    loads). Data-preprocessor buffers (mean/std) are ignored.

    Args:
        model: the model to load into.
        state: the state dict.
        embed: a tensor smaller than the model's fits (see
            :func:`load_state_strictly`).

    Returns:
        the counts and first examples of shape mismatches, missing and
        unexpected keys, or None.
    """
    own = {k: v for k, v in model.state_dict().items()
           if 'data_preprocessor.' not in k}
    state = {k: v for k, v in state.items() if 'data_preprocessor.' not in k}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f'{k}: checkpoint {tuple(state[k].shape)} vs model '
             f'{tuple(own[k].shape)}' for k in own
             if k in state and not _fits(state[k], own[k], embed)]
    problems = []
    if wrong:
        problems.append(f'{len(wrong)} shape mismatch(es), e.g. {wrong[0]}')
    if missing:
        problems.append(f'{len(missing)} missing key(s), e.g. {missing[0]}')
    if unexpected:
        problems.append(f'{len(unexpected)} unexpected key(s), e.g. '
                        f'{unexpected[0]}')
    return '; '.join(problems) or None


def check_load_from(model: nn.Module, checkpoint: str) -> None:
    """Refuses a ``load_from`` checkpoint that would load only partly.

    mmengine loads ``load_from`` non-strictly: mismatching tensors keep
    their random initialization with only a warning in the log. Called
    before training starts, this turns that into an error.

    Args:
        model: the (unwrapped) model the runner built.
        checkpoint: the ``load_from`` path.
    """
    problem = state_mismatch(model, state_dict_of(read_checkpoint(checkpoint)))
    if problem:
        raise CheckpointMismatchError(
            f'load_from {checkpoint} does not match the model built from '
            f'the config: {problem}. To start searched subnets from the '
            'supernet, set model.init_from=SUPERNET_CHECKPOINT instead '
            '(its tensors are sliced to every subnet); to continue a run, '
            'use --resume.')


def load_state_strictly(model: nn.Module, state: dict[str, torch.Tensor],
                        source: str, embed: bool = False) -> None:
    """Loads ``state`` into ``model``; any mismatch is a clear error.

    Data-preprocessor buffers (mean/std) are ignored.

    Args:
        model: the model to load into.
        state: the state dict.
        source: names the checkpoint in errors.
        embed: a tensor smaller than the model's (a narrower network, e.g.
            the original model inside a supernet grown by ``width_cap``)
            fills its leading slice instead of being a mismatch.
    """
    problem = state_mismatch(model, state, embed)
    if problem:
        raise CheckpointMismatchError(
            f'checkpoint {source} does not match the model built from the '
            f'config: {problem}. Use the config the checkpoint was trained '
            'with (a split subnet checkpoint needs its channel_cfg).')
    own = model.state_dict()
    state = {k: v for k, v in state.items() if 'data_preprocessor.' not in k}
    if embed:
        state = {k: _embedded(v, own[k]) for k, v in state.items()}
    model.load_state_dict(state, strict=False)


def _fits(tensor: torch.Tensor, target: torch.Tensor, embed: bool) -> bool:
    if tensor.shape == target.shape:
        return True
    return embed and tensor.dim() == target.dim() and all(
        a <= b for a, b in zip(tensor.shape, target.shape))


def _embedded(tensor: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``target``'s values with ``tensor`` in its leading slice."""
    if tensor.shape == target.shape:
        return tensor
    result = target.detach().clone()
    result[tuple(slice(0, n) for n in tensor.shape)] = tensor
    return result


def architecture_state(state: dict[str, torch.Tensor]
                       ) -> dict[str, torch.Tensor]:
    """The classifier's part of a state dict: an algorithm's checkpoint
    keeps it under ``architecture.``; a plain model's is returned as is."""
    if any(k.startswith('architecture.') for k in state):
        return {k.removeprefix('architecture.'): v for k, v in state.items()
                if k.startswith('architecture.')}
    return state


def newest_complete_checkpoint(work_dir: str) -> str | None:
    """The checkpoint ``--resume`` continues from.

    mmengine follows ``last_checkpoint``; a job killed at the wrong moment
    can leave it empty or naming a file that is gone. Then the newest
    checkpoint of the work dir that loads is used instead (None: mmengine's
    own lookup, which starts from scratch when there is none).
    """
    pointer = os.path.join(work_dir, 'last_checkpoint')
    if os.path.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named and os.path.isfile(named):
            return None  # mmengine's lookup finds it
    candidates = sorted(
        glob.glob(os.path.join(work_dir, '*.pth')), key=os.path.getmtime,
        reverse=True)
    for path in candidates:
        try:
            load_checkpoint_file(path, map_location='cpu')
        except Exception:  # truncated or foreign: try the next one
            continue
        print_log(f'--resume: {pointer} is missing, empty or stale; '
                  f'resuming from the newest complete checkpoint {path}',
                  logger='current', level=logging.WARNING)
        return path
    return None
