"""Joint retraining of searched subnets (slimmable network)."""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import torch
from mmengine.logging import MMLogger
from mmengine.optim import OptimWrapper
from torch import nn

from ...channel_cfg import ChannelConfig, read_channel_cfg
from ...checkpoint import (
    architecture_state,
    load_state_strictly,
    read_checkpoint,
    state_dict_of,
)
from ...dynamic_ops import SubnetSwitch, SwitchableBatchNorm
from ...errors import ConfigError
from ...memory_format import to_memory_format
from ...mutator import ChannelMutator
from ...registry import MODELS
from ..backbones.fbnetv2 import keep_chosen_blocks
from .base import ChannelSupernet, architecture_with_blocks


def read_channel_cfgs(channel_cfgs: str | dict | Sequence | None
                      ) -> list[ChannelConfig]:
    """Loads one or several channel_cfgs (paths, dicts or configs).

    A string may hold several comma-separated paths, as typed in
    ``--cfg-options model.channel_cfgs=a.yaml,b.yaml``.
    """
    if not channel_cfgs:
        raise ConfigError(
            'model.channel_cfgs is not set; pass the search results, e.g. '
            '--cfg-options model.channel_cfgs=a.yaml,b.yaml,c.yaml (or one '
            'file to train one subnet).')
    if isinstance(channel_cfgs, (str, dict, ChannelConfig)):
        channel_cfgs = [channel_cfgs]
    items = []
    for item in channel_cfgs:
        if isinstance(item, str):
            items.extend(p for p in item.split(',') if p)
        else:
            items.append(item)
    if not items:
        raise ConfigError('model.channel_cfgs is empty; give one or more '
                          'channel_cfg YAML files.')
    return [read_channel_cfg(i) for i in items]


def subnet_name(cfg: ChannelConfig, index: int) -> str:
    """A short name for a subnet: its file's stem, else its index."""
    if cfg.source.endswith(('.yaml', '.yml')):
        return os.path.splitext(os.path.basename(cfg.source))[0]
    return f'subnet{index}'


@MODELS.register_module()
class SlimmableNetwork(ChannelSupernet):
    """Trains the subnets of several channel_cfgs jointly.

    Convolution and linear weights are shared (each subnet uses its first
    channels); every subnet has private batch norms (switchable BN). With a
    single channel_cfg the architecture is the static subnet itself, so a
    split checkpoint loads into it directly. A subnet whose channel_cfg has
    a ``resolution`` runs on the inputs sub-sampled to it. A channel_cfg
    with ``blocks:`` trains alone: a backbone built from its blocks
    (FBNet DNAS, ReXNet; see :func:`architecture_with_blocks`) is built
    with them, an FBNetV2 space keeps only the chosen kernels; with
    ``blocks:`` but no ``channels:`` every group keeps its full width.

    This is the retraining model of every method: each search writes a
    channel_cfg, and ``model.channel_cfgs=FILE`` retrains it.

    Args:
        architecture: the classifier config or instance (the supernet).
        channel_cfgs: channel_cfg paths (or dicts), or one comma-separated
            string; widest first is recommended (it is trained first).
        mutator: the :class:`ChannelMutator` config or instance.
        distill: narrower subnets learn the first subnet's soft predictions.
        init_from: a checkpoint of the supernet (the architecture at full
            width, e.g. the supernet training's ``epoch_N.pth``) that every
            subnet starts from, its tensors sliced to the subnet's widths
            (switchable BNs: each subnet's own slice). Loaded strictly in
            :meth:`init_weights`, so a resumed run still continues from its
            own checkpoint. None: the architecture's initialization (from
            scratch).
        data_preprocessor: defaults to the architecture's.
        init_cfg: mmengine init config.
        memory_format: see :class:`ChannelSupernet`.
        backbone: deprecated: the ReXNet and DNAS retrain configs used to
            take the result as ``model.backbone.block_channels=[...]`` or
            ``model.backbone.blocks=FILE``; these keys are merged into the
            architecture's backbone (with one warning), and without
            ``channel_cfgs`` the network keeps its full widths.
    """

    def __init__(self,
                 architecture: dict | nn.Module,
                 channel_cfgs: str | dict | Sequence | None,
                 mutator: dict | ChannelMutator | None = None,
                 distill: bool = False,
                 init_from: str | None = None,
                 data_preprocessor: dict | nn.Module | None = None,
                 init_cfg: dict | None = None,
                 memory_format: str = 'channels_last',
                 backbone: dict | None = None) -> None:
        if backbone:
            architecture = _merge_deprecated_backbone(architecture, backbone)
        cfgs = read_channel_cfgs(channel_cfgs) \
            if channel_cfgs or not backbone else []
        if len(cfgs) > 1 and any(c.blocks for c in cfgs):
            raise ConfigError(
                'channel_cfgs with blocks: (e.g. FBNetV2 kernels) train '
                'one at a time: give model.channel_cfgs a single file.')
        if len(cfgs) == 1:
            architecture = architecture_with_blocks(architecture,
                                                    cfgs[0].blocks)
        super().__init__(architecture, mutator, data_preprocessor, init_cfg,
                         memory_format=memory_format)
        self.init_from = init_from
        full = dict(self.mutator.max_widths)
        self.channel_cfgs = [c.with_full_widths(full) for c in cfgs] or [
            ChannelConfig(full, source='model.backbone (deprecated keys)')]
        for cfg in self.channel_cfgs:
            self.mutator.set_choices(cfg)  # validates against the model
        self.subnet_names = [subnet_name(c, i)
                             for i, c in enumerate(self.channel_cfgs)]
        self.distill = distill
        self.switch = SubnetSwitch()
        if len(self.channel_cfgs) == 1:
            static = self.mutator.export_static()
            if self.channel_cfgs[0].blocks:  # FBNetV2's kernels
                keep_chosen_blocks(static, self.channel_cfgs[0].blocks)
            self.architecture = to_memory_format(static, self.memory_format)
        else:
            self._make_batch_norms_switchable()
        self.activate(0)

    @property
    def is_static(self) -> bool:
        """Whether the architecture is one static subnet."""
        return len(self.channel_cfgs) == 1

    def _make_batch_norms_switchable(self) -> None:
        """Every batch norm reading a searchable group becomes one per
        subnet, each a copy of its channels in that subnet."""
        layers = [info for info in self.mutator.analysis.layers.values()
                  if info.kind == 'bn' and info.input_groups()]
        per_subnet: dict[str, list] = {info.name: [] for info in layers}
        for cfg in self.channel_cfgs:
            self.mutator.set_choices(cfg)
            widths = self.mutator.current_choices()
            for info in layers:
                bn = self.architecture.get_submodule(info.name)
                per_subnet[info.name].append(
                    bn.to_static(info.input_width(widths)))
        for info in layers:
            parent_name, _, child = info.name.rpartition('.')
            parent = self.architecture.get_submodule(parent_name)
            setattr(parent, child, SwitchableBatchNorm(
                per_subnet[info.name], self.switch))

    def init_weights(self) -> None:
        """The architecture's initialization, then (with ``init_from``)
        the supernet's weights sliced to every subnet."""
        super().init_weights()
        if self.init_from:
            self.load_supernet_start(self.init_from)

    def load_supernet_start(self, checkpoint: str) -> None:
        """Sets every subnet's weights to the supernet's in ``checkpoint``,
        sliced to its widths; any mismatch with the supernet this model
        was built from is a :class:`CheckpointMismatchError`."""
        ckpt = read_checkpoint(checkpoint)
        state = architecture_state(state_dict_of(ckpt))
        if self.is_static:
            # the mutator still holds the full-width dynamic architecture
            load_state_strictly(self.mutator.model, state, checkpoint)
            self.mutator.set_choices(self.channel_cfgs[0])
            static = self.mutator.export_static()
            load_state_strictly(self.architecture, static.state_dict(),
                                checkpoint)
            return
        load_state_strictly(self.architecture,
                            self._switchable_state(state, checkpoint),
                            checkpoint)
        self.activate(self.switch.index)

    def _switchable_state(self, state: dict[str, torch.Tensor],
                          source: str) -> dict[str, torch.Tensor]:
        """A supernet state dict with each switchable BN's tensors copied
        into every subnet's private BN, sliced to that subnet's width."""
        switchable = {name for name, module
                      in self.architecture.named_modules()
                      if isinstance(module, SwitchableBatchNorm)}
        result = {}
        for key, value in state.items():
            layer, _, tensor = key.rpartition('.')
            if layer not in switchable:
                result[key] = value
                continue
            bns = self.architecture.get_submodule(layer).bns
            for index, bn in enumerate(bns):
                result[f'{layer}.bns.{index}.{tensor}'] = (
                    value if value.dim() == 0 else value[:bn.num_features])
        return result

    def activate(self, index: int) -> None:
        """Makes subnet ``index`` the one the forward runs."""
        if not self.is_static:
            self.mutator.set_choices(self.channel_cfgs[index])
        self.switch.index = index
        self.resolution = self.channel_cfgs[index].resolution

    def train_step(self, data: dict,
                   optim_wrapper: OptimWrapper) -> dict[str, torch.Tensor]:
        """One step over every subnet, in the order of ``channel_cfgs``."""
        subnets = [(name, lambda i=i: self.activate(i))
                   for i, name in enumerate(self.subnet_names)]
        return self.train_subnets(data, optim_wrapper, subnets, self.distill)

    def eval_subnets(self) -> dict[str, Callable[[], None]]:
        """Validation reports every subnet."""
        return {name: lambda i=i: self.activate(i)
                for i, name in enumerate(self.subnet_names)}


def _merge_deprecated_backbone(architecture: dict | nn.Module,
                               backbone: dict) -> dict:
    """``architecture`` with the deprecated ``model.backbone.*`` keys of the
    old ReXNet and DNAS retrain configs merged into its backbone."""
    keys = ', '.join(f'model.backbone.{k}' for k in backbone)
    MMLogger.get_current_instance().warning(
        f'{keys} is deprecated in a retrain config (the network is '
        'model.architecture): pass the search\'s result as '
        'model.channel_cfgs=FILE (a ReXNet best.yaml, a DNAS derived.yaml '
        'or best.yaml).')
    if not isinstance(architecture, dict):
        raise ConfigError(f'{keys} needs model.architecture as a config; '
                          'pass model.channel_cfgs=FILE instead.')
    merged = dict(architecture.get('backbone') or {}, **backbone)
    if 'blocks' in backbone:
        merged.pop('block_channels', None)
    return dict(architecture, backbone=merged)
