"""The supernet every channel-search algorithm is built on."""
from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
from torch import nn

from ...channel_cfg import read_channel_cfg
from ...distributed import average_gradients
from ...errors import ConfigError
from ...latency_table import LatencyTable, OpSpec
from ...memory_format import (
    check_memory_format,
    runs_channels_last,
    to_memory_format,
)
from ...mutator import ChannelMutator
from ...registry import MODELS
from ...resolution import subsample

# A subnet to train: its name and a function that activates it.
Subnet = tuple[str, Callable[[], None]]


def soft_cross_entropy(logits: torch.Tensor,
                       target_probs: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against soft targets (in-place distillation)."""
    return -(target_probs * F.log_softmax(logits.float(), dim=-1)).sum(
        -1).mean()


def build_architecture(architecture: dict | nn.Module,
                       data_preprocessor: dict | nn.Module | None
                       ) -> tuple[nn.Module, nn.Module | None]:
    """The classifier an algorithm wraps, and the preprocessor both share.

    A top-level ``data_preprocessor`` config belongs to the classifier (it
    knows its default type); without one the classifier's is used.
    """
    if isinstance(architecture, dict):
        architecture = dict(architecture)
        if isinstance(data_preprocessor, dict):
            architecture.setdefault('data_preprocessor', data_preprocessor)
        architecture = MODELS.build(architecture)
    if data_preprocessor is None or isinstance(data_preprocessor, dict):
        data_preprocessor = getattr(architecture, 'data_preprocessor', None)
    return architecture, data_preprocessor


def architecture_with_blocks(architecture: dict | nn.Module,
                            blocks: Mapping[str, Any] | None
                            ) -> dict | nn.Module:
    """The classifier config whose backbone is built from a channel_cfg's
    ``blocks:``, where that backbone's channel groups follow its blocks.

    Such backbones (``CHANNEL_GROUPS_FOLLOW_BLOCKS``: FBNetSearchSpace,
    ReXNet, PlainInvertedBottleneckNet) take ``blocks`` as an argument and
    build only that network, whose groups the channel_cfg's ``channels:``
    name; ``block_channels`` given in the config gives way to them. Other
    backbones (an FBNetV2 space keeps its kernels after export) and
    built modules are returned unchanged.

    Args:
        architecture: the classifier config (or module).
        blocks: the channel_cfg's ``blocks:`` (None or empty: unchanged).

    Returns:
        ``architecture``, or a copy with ``backbone.blocks`` set.
    """
    backbone = architecture.get('backbone') \
        if isinstance(architecture, Mapping) else None
    if not blocks or not isinstance(backbone, Mapping):
        return architecture
    kind = backbone.get('type')
    cls = MODELS.get(kind) if isinstance(kind, str) else kind
    if not getattr(cls, 'CHANNEL_GROUPS_FOLLOW_BLOCKS', False):
        return architecture
    backbone = {k: v for k, v in backbone.items() if k != 'block_channels'}
    return dict(architecture, backbone=dict(backbone, blocks=dict(blocks)))


def space_candidates(architecture: nn.Module
                     ) -> dict[str, tuple[int, ...]] | None:
    """Producer module -> candidate widths, for a search-space backbone
    that names its own (``channel_candidates()``, e.g. FBNetV2's)."""
    backbone = getattr(architecture, 'backbone', None)
    named = getattr(backbone, 'channel_candidates', None)
    if named is None:
        return None
    return {f'backbone.{name}': widths for name, widths in named().items()}


@MODELS.register_module()
class ChannelSupernet(BaseModel):
    """An mmpretrain classifier made channel-searchable.

    The architecture's channel groups are found and its layers made dynamic
    by the mutator; the forward is the architecture's, at the mutator's
    current widths. Search algorithms subclass this and choose which subnets
    a train step trains (:meth:`train_subnets`) and which a validation
    evaluates (:meth:`eval_subnets`). A channel_cfg with a ``resolution``
    makes the network run on the inputs sub-sampled to it (the grid of
    :func:`~mmchansearch.resolution.subsample`, as in the resolution
    search).

    Args:
        architecture: config or instance of the classifier (for example an
            mmpretrain ``ImageClassifier``).
        mutator: config or instance of the :class:`ChannelMutator`.
        data_preprocessor: defaults to the architecture's.
        init_cfg: mmengine init config.
        channel_cfg: widths to start at (a channel_cfg path or mapping;
            default: every group at its max).
        memory_format: 'channels_last' (default: about 2x faster on CPUs
            and with mixed precision on GPUs) or 'contiguous'; see
            :mod:`~mmchansearch.memory_format`.
    """

    def __init__(self,
                 architecture: dict | nn.Module,
                 mutator: dict | ChannelMutator | None = None,
                 data_preprocessor: dict | nn.Module | None = None,
                 init_cfg: dict | None = None,
                 channel_cfg: str | dict | None = None,
                 memory_format: str = 'channels_last') -> None:
        check_memory_format(memory_format)
        architecture, data_preprocessor = build_architecture(
            architecture, data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.architecture = architecture
        mutator = mutator if mutator is not None else dict(
            type='ChannelMutator')
        self.mutator: ChannelMutator = MODELS.build(mutator) \
            if isinstance(mutator, dict) else mutator
        self.mutator.prepare(self.architecture,
                             space_candidates(self.architecture))
        self.resolution: int | None = None
        if channel_cfg is not None:
            channel_cfg = read_channel_cfg(channel_cfg)
            self.mutator.set_choices(channel_cfg)
            self.resolution = channel_cfg.resolution
        to_memory_format(self.architecture, memory_format)
        if memory_format == 'channels_last' and not runs_channels_last(
                self.architecture, self.mutator.input_shape):
            MMLogger.get_current_instance().warning(
                'the model flattens a 4-D activation with view(), which '
                'fails on channels-last tensors; it runs contiguous.')
            memory_format = 'contiguous'
            to_memory_format(self.architecture, memory_format)
        self.memory_format = memory_format

    def forward(self, inputs: Any, data_samples: Any = None,
                mode: str = 'tensor') -> Any:
        """The architecture's forward at the current widths (and input
        resolution)."""
        return self.architecture(self.resize_inputs(inputs), data_samples,
                                 mode)

    def resize_inputs(self, inputs: Any) -> Any:
        """``inputs`` sub-sampled to :attr:`resolution` (when set)."""
        if self.resolution is None or not torch.is_tensor(inputs):
            return inputs
        size = inputs.shape[-2:]
        if self.resolution > min(size):
            raise ConfigError(
                f'channel_cfg resolution {self.resolution} is above the '
                f'input size {tuple(size)}; the data pipeline must give '
                f'inputs of at least {self.resolution}x{self.resolution}.')
        return subsample(inputs, (self.resolution, self.resolution))

    @property
    def input_shape(self) -> tuple[int, ...]:
        """(C, H, W) of one sample, as the mutator traced it."""
        return self.mutator.input_shape

    def sample_network(self, rng: random.Random
                       ) -> tuple[nn.Module, Callable[[LatencyTable], float]]:
        """Random candidate widths as a static network, with its latency
        predicted by a table (for
        :func:`~mmchansearch.latency_table.calibrate` and fidelity checks).
        The supernet is left at those widths."""
        choices = self.mutator.sample(rng)
        self.mutator.set_choices(choices)
        return self.mutator.export_static(), lambda table: float(
            self.mutator.latency_model(table).latency(choices))

    def latency_ops(self) -> list[OpSpec]:
        """The ops a latency table of this search space must hold: every
        analyzed layer at the candidate widths of its groups."""
        return self.mutator.latency_ops()

    # ------------------------------------------------------------ subnets
    def eval_subnets(self) -> dict[str, Callable[[], None]]:
        """Subnets a validation reports, name -> activate function.

        The default is the current widths, unchanged.
        """
        return {'current': lambda: None}

    # ----------------------------------------------------------- training
    def train_step(self, data: dict,
                   optim_wrapper: OptimWrapper) -> dict[str, torch.Tensor]:
        """Trains the current widths (subclasses train several subnets)."""
        return self.train_subnets(data, optim_wrapper,
                                  [('current', lambda: None)], distill=False)

    def train_subnets(self, data: dict, optim_wrapper: OptimWrapper,
                      subnets: Sequence[Subnet],
                      distill: bool) -> dict[str, torch.Tensor]:
        """One optimizer step over several subnets.

        Each subnet is activated, run and back-propagated in turn, so only
        one subnet's activations are alive at a time; gradients add up and
        are averaged over ranks once, then the optimizer steps.

        Args:
            data: a batch from the dataloader.
            optim_wrapper: the optimizer wrapper.
            subnets: (name, activate) pairs; the first is the teacher when
                ``distill`` is set.
            distill: train every subnet after the first on the first one's
                detached soft predictions (in-place distillation) instead of
                the labels.

        Returns:
            Losses for logging, one per subnet.
        """
        with optim_wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
        inputs, samples = data['inputs'], data['data_samples']
        head = self.architecture.head
        teacher_probs = None
        losses = {}
        for name, activate in subnets:
            activate()
            with optim_wrapper.optim_context(self):
                logits = self.architecture(self.resize_inputs(inputs),
                                           mode='tensor')
                if teacher_probs is None:
                    loss = sum(head._get_loss(logits, samples).values())
                else:
                    loss = soft_cross_entropy(logits, teacher_probs)
            if distill and teacher_probs is None:
                teacher_probs = F.softmax(logits.detach().float(), dim=-1)
            optim_wrapper.backward(loss)
            losses[f'{name}_loss'] = loss.detach()
        average_gradients(self.parameters())
        optim_wrapper.step()
        optim_wrapper.zero_grad()
        _, log_vars = self.parse_losses(losses)
        return log_vars
