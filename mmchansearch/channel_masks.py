"""Multiplicative masks on a channel group, applied where it is read.

A group's channels are masked at the input of every conv and linear layer
that reads the group (batch norms and activations are per channel, so they
need no mask), all with the same mask. A residual channel thus vanishes
everywhere at once, and a 0/1 mask keeping the first c channels gives
exactly the network whose group is c wide. Network Adjustment drops random
channels this way; DMaskingNAS weights the candidate widths with it.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from .analysis import ChannelAnalysis, refuse_channel_parts
from .layer_kinds import LAYER_KINDS


def group_readers(analysis: ChannelAnalysis, group: str) -> list[tuple]:
    """(layer name, kind) of every conv / linear layer reading ``group``
    (a group read inside a concatenation is refused)."""
    refuse_channel_parts(
        analysis, 'channel masks (DMaskingNAS, Network Adjustment)',
        'search this model with AutoSlim, or freeze the concatenated groups '
        '(mutator frozen_groups)', [group])
    return [(name, info.kind) for name, info in analysis.layers.items()
            if info.in_group == group and info.kind != 'bn']


class ForwardHooks:
    """Hooks on a model's modules, registered by a subclass in
    ``_handles``; as a context manager, they are removed at its end."""

    _handles: list

    def remove(self) -> None:
        """Removes the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> ForwardHooks:
        return self

    def __exit__(self, *_) -> None:
        self.remove()


class MaskHooks(ForwardHooks):
    """Forward hooks that multiply activations by the tensors in
    ``masks[group]`` (None: unmasked)."""

    masks: dict

    def clear(self) -> None:
        """No group masked."""
        self.masks = dict.fromkeys(self.masks)


class GroupMasks(MaskHooks):
    """Persistent masks on several groups: set ``masks[group]`` to a tensor
    (or None for no mask) before a forward. As a context manager, the hooks
    are removed at its end.

    Args:
        model: the analyzed model (the mutator's).
        analysis: its channel analysis.
        groups: the groups that can be masked.
    """

    def __init__(self, model: nn.Module, analysis: ChannelAnalysis,
                 groups: Iterable[str]) -> None:
        self.masks: dict[str, torch.Tensor | None] = {}
        self._handles = []
        for group in groups:
            self.masks[group] = None
            for name, kind in group_readers(analysis, group):
                self._handles.append(
                    model.get_submodule(name).register_forward_pre_hook(
                        self._hook(group, kind)))

    def _hook(self, group: str, kind: str):
        def hook(_, args):
            mask = self.masks[group]
            if mask is None:
                return None
            return (LAYER_KINDS[kind].mask(args[0], mask), *args[1:])
        return hook

