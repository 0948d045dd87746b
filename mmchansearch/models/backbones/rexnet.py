"""ReXNet, the rank-expansion network.

Han et al., "Rethinking Channel Dimensions for Efficient Model Design",
CVPR 2021 (arXiv:2007.00992). A MobileNetV2-like stack of 16 inverted
bottlenecks whose output channels grow linearly with the block index,
instead of stage by stage, so that every block expands its input:

- stem: 3x3 conv, stride 2, 32 channels (times the multiplier from 1.0x
  up), BN, SiLU;
- blocks in six stages of 1, 2, 2, 3, 3, 5, the first block of each with
  stride 1, 2, 2, 2, 1, 2; expansion 1 in the first block, 6 after;
  expand 1x1 conv + BN + SiLU, 3x3 depthwise conv + BN, squeeze-excitation
  (from the third stage on), ReLU6, linear 1x1 projection + BN;
- a partial residual: a stride-1 block adds its input to the first
  ``in_channels`` of its wider output;
- penultimate 1x1 conv to 1280 channels (times the multiplier), BN, SiLU.

Block ``i`` outputs ``16 + i * 180 / 16`` channels at 1.0x (16, 27, ...,
185), scaled by the width multiplier (see :func:`rexnet_channels`); the
rounding follows the published models, so their checkpoints' tensors have
our shapes.

At 224x224 with a 1000-class linear head, 1.0x has 4.80M params and 0.398G
conv + linear multiply-accumulates, 0.9x 4.09M and 0.348G (published:
4.8M / 0.40G and 4.1M / 0.35G).
"""
from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import torch
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.models.utils import make_divisible
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ...channel_cfg import (
    ChannelConfig,
    choices_by_layer,
    read_channel_cfg,
)
from ...errors import ConfigError
from ...registry import MODELS

# (blocks, stride of the first block, squeeze-excitation) per stage.
STAGES = ((1, 1, False), (2, 2, False), (2, 2, True), (3, 2, True),
          (3, 1, True), (5, 2, True))
# Blocks per stage of the published 16-block models.
STAGE_BLOCKS = tuple(n for n, _, _ in STAGES)


def conv_bn(in_channels: int, out_channels: int, kernel_size: int = 1,
            stride: int = 1, groups: int = 1,
            act: nn.Module | None = None) -> nn.Sequential:
    """Conv (no bias) + BN (+ activation), as children conv, bn, act.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size; padding keeps the size at stride 1.
        stride: conv stride.
        groups: conv groups (``in_channels`` for a depthwise conv).
        act: activation after the BN, none when None.

    Returns:
        The layers as an ``nn.Sequential``.
    """
    layers = OrderedDict(
        conv=nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                       kernel_size // 2, groups=groups, bias=False),
        bn=nn.BatchNorm2d(out_channels))
    if act is not None:
        layers['act'] = act
    return nn.Sequential(layers)


class SqueezeExcite(nn.Module):
    """Squeeze-excitation with a BN and ReLU in its bottleneck.

    Args:
        channels: channels scaled.
        hidden_channels: channels of the bottleneck.
    """

    def __init__(self, channels: int, hidden_channels: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, hidden_channels, 1)
        self.bn = nn.BatchNorm2d(hidden_channels)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(hidden_channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.act(self.bn(self.reduce(x.mean((2, 3), keepdim=True))))
        return x * torch.sigmoid(self.expand(scale))


class LinearBottleneck(nn.Module):
    """ReXNet's inverted bottleneck with a partial residual, or (with
    ``expand_act=nn.ReLU6``, no squeeze-excitation and
    ``partial_residual=False``) MobileNetV2's plain one.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        expand_ratio: hidden channels over input channels; 1 drops the
            expansion conv.
        stride: stride of the depthwise conv.
        se_hidden_channels: bottleneck of the squeeze-excitation; 0 for
            none.
        expand_act: activation class after the expansion conv (ReXNet:
            SiLU; MobileNetV2: ReLU6).
        partial_residual: a stride-1 block adds its input to the first
            ``in_channels`` of a wider output (ReXNet); False adds it only
            when the widths are equal (MobileNetV2).
    """

    def __init__(self, in_channels: int, out_channels: int,
                 expand_ratio: int, stride: int,
                 se_hidden_channels: int = 0,
                 expand_act: type[nn.Module] = nn.SiLU,
                 partial_residual: bool = True) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        hidden = in_channels * expand_ratio
        self.expand = conv_bn(in_channels, hidden, act=expand_act()) \
            if expand_ratio != 1 else nn.Identity()
        self.dwconv = conv_bn(hidden, hidden, 3, stride, groups=hidden)
        self.se = SqueezeExcite(hidden, se_hidden_channels) \
            if se_hidden_channels else nn.Identity()
        self.act = nn.ReLU6()
        self.project = conv_bn(hidden, out_channels)
        self.use_residual = stride == 1 and (
            in_channels <= out_channels if partial_residual
            else in_channels == out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.act(self.se(self.dwconv(self.expand(x)))))
        if not self.use_residual:
            return out
        if self.in_channels == self.out_channels:
            return out + x
        c = self.in_channels
        return torch.cat([out[:, :c] + x, out[:, c:]], dim=1)


def rexnet_channels(widen_factor: float = 1.0, divisor: int = 1,
                    num_blocks: int = 16, start: int = 16,
                    increase: float = 180.) -> list[int]:
    """Output channels of the blocks: ``start + i * increase / num_blocks``.

    Below 1.0x only the increase is scaled, so the first block keeps
    ``start`` channels (0.9x: 16, 26, 36, ..., 168), as in the published
    models. Values are rounded half to even, then to a multiple of
    ``divisor`` (1 for the published models).

    Args:
        widen_factor: width multiplier.
        divisor: channels become a multiple of it.
        num_blocks: number of blocks.
        start: channels of the first block at 1.0x.
        increase: channels added over all blocks at 1.0x.

    Returns:
        ``num_blocks`` channel counts.
    """
    base = start / widen_factor if widen_factor < 1 else start
    channels = []
    for _ in range(num_blocks):
        channels.append(make_divisible(round(base * widen_factor), divisor))
        # Accumulated, as the published model does, so that float rounding
        # (and so the rounded channels) match its checkpoints.
        base += increase / num_blocks
    return channels


def _check_stage_blocks(stage_blocks: Sequence[int] | None
                        ) -> tuple[int, ...]:
    """The blocks per stage, checked; the published ones for None."""
    if stage_blocks is None:
        return STAGE_BLOCKS
    blocks = tuple(stage_blocks)
    if len(blocks) != len(STAGES) or not all(
            isinstance(n, int) and n >= 1 for n in blocks):
        raise ConfigError(
            f'ReXNet stage_blocks must be {len(STAGES)} integers >= 1 '
            f'(blocks per stage, e.g. {list(STAGE_BLOCKS)}), got '
            f'{list(blocks)}.')
    return blocks


def both_widths_error(owner: str) -> ConfigError:
    """The error for a backbone given both ``block_channels`` and
    ``blocks``."""
    return ConfigError(
        f'{owner}: give the block widths as block_channels or as blocks '
        '(a channel_cfg), not both.')


def check_block_channels(block_channels: Sequence[int], num_blocks: int,
                         owner: str = 'ReXNet') -> list[int]:
    """The explicit block widths, checked: one positive integer per
    block, never decreasing.

    Args:
        block_channels: the widths given.
        num_blocks: blocks of the network.
        owner: the backbone named in the error messages.

    Returns:
        The widths as a list.

    Raises:
        ConfigError: a width is missing, extra, not a positive integer or
            smaller than the one before.
    """
    channels = list(block_channels)
    if len(channels) != num_blocks:
        raise ConfigError(
            f'{owner} block_channels has {len(channels)} values but the '
            f'network has {num_blocks} blocks (sum of stage_blocks); give '
            'one output width per block.')
    for i, c in enumerate(channels):
        if not (isinstance(c, int) and c >= 1):
            raise ConfigError(f'{owner} block_channels[{i}] must be a '
                              f'positive integer, got {c!r}.')
    for i, (a, b) in enumerate(zip(channels, channels[1:])):
        if b < a:
            raise ConfigError(
                f'{owner} block_channels must be non-decreasing (every '
                f'block expands its input): block {i + 1} has {b} < {a} '
                f'channels of block {i}; got {channels}.')
    return channels


def block_names(stage_blocks: Sequence[int]) -> list[str]:
    """The blocks' module names in the backbone, ``stages.<s>.<j>``: the
    layer names of a channel_cfg's ``blocks:`` for ReXNet and
    PlainInvertedBottleneckNet."""
    return [f'stages.{s}.{j}' for s, n in enumerate(stage_blocks)
            for j in range(n)]


def widths_from_blocks(blocks: Mapping | ChannelConfig | str | os.PathLike,
                       stage_blocks: Sequence[int],
                       owner: str = 'ReXNet') -> list[int]:
    """The block widths a ``blocks`` choice gives: every block's output
    width under its name (``stages.<s>.<j>``, with or without the
    ``backbone.`` prefix of a channel_cfg).

    Args:
        blocks: block name -> output width, or a channel_cfg (path,
            mapping or :class:`ChannelConfig`) whose ``blocks:`` holds it.
        stage_blocks: blocks per stage of the network.
        owner: the backbone named in the error messages.

    Returns:
        One width per block, in order (checked by
        :func:`check_block_channels`).

    Raises:
        ChannelConfigError: an unknown or missing block
            (:func:`~mmchansearch.channel_cfg.choices_by_layer`).
        ConfigError: a width that is not a positive integer, or smaller
            than the one before.
    """
    source = os.fspath(blocks) if isinstance(blocks, (str, os.PathLike)) \
        else 'blocks'
    if isinstance(blocks, (str, os.PathLike, ChannelConfig)) or \
            'blocks' in blocks:
        cfg = read_channel_cfg(blocks)
        source, blocks = cfg.source, cfg.blocks
    names = block_names(stage_blocks)
    widths = choices_by_layer(blocks, names, source, f'this {owner}')
    return check_block_channels([widths[n] for n in names], len(names),
                                owner)


@MODELS.register_module()
class ReXNet(BaseBackbone):
    """ReXNet backbone (see the module docstring).

    Args:
        widen_factor: width multiplier; published: 0.9, 1.0, 1.3, 1.5, 2.0,
            3.0.
        divisor: every width becomes a multiple of it; 1 (the published
            models) keeps the linear rule exact, 8 gives rounded widths.
        se_ratio: squeeze-excitation bottleneck is ``channels // se_ratio``.
        out_indices: outputs to return: 0-5 the stages of blocks, 6 the
            penultimate 1x1 conv.
        frozen_stages: the stem and stages ``0..frozen_stages - 1`` stay in
            eval mode with frozen parameters; -1 freezes nothing.
        norm_eval: keep every BN in eval mode while training.
        init_cfg: mmengine init config; None for Kaiming-normal convs and
            unit BN weights.
        stage_blocks: blocks in each of the six stages (each >= 1); None
            for the published (1, 2, 2, 3, 3, 5) (16 blocks). The paper's
            18- and 30-block variants add blocks to stages, e.g.
            (1, 2, 2, 3, 4, 6); (1, 1, 1, 1, 1, 1) is the smallest network.
        block_channels: explicit output channels of every block (one per
            block, non-decreasing), the channel-search space; None for the
            linear rule of :func:`rexnet_channels` at ``widen_factor``.
            The stem and the penultimate conv still follow
            ``widen_factor``.
        blocks: the block widths as a choice per block (block name
            ``stages.<s>.<j>`` -> output width), a mapping or a channel_cfg
            (path or mapping) with a ``blocks:`` section, e.g. a ReXNet
            search's ``best.yaml``; instead of ``block_channels``.
    """
    # the channel groups are those of the network ``blocks`` builds: a
    # channel_cfg's blocks: are passed at build time (SlimmableNetwork)
    CHANNEL_GROUPS_FOLLOW_BLOCKS = True

    def __init__(self,
                 widen_factor: float = 1.0,
                 divisor: int = 1,
                 se_ratio: int = 12,
                 out_indices: Sequence[int] = (6, ),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg: dict | list[dict] | None = None,
                 stage_blocks: Sequence[int] | None = None,
                 block_channels: Sequence[int] | None = None,
                 blocks: Mapping | str | os.PathLike | None = None) -> None:
        if init_cfg is None:
            init_cfg = [dict(type='Kaiming', layer=['Conv2d']),
                        dict(type='Constant', val=1, layer=['_BatchNorm'])]
        super().__init__(init_cfg)
        for index in out_indices:
            if index not in range(len(STAGES) + 1):
                raise ValueError(f'out_indices: {index} not in 0..'
                                 f'{len(STAGES)}')
        if frozen_stages not in range(-1, len(STAGES) + 1):
            raise ValueError(f'frozen_stages: {frozen_stages} not in -1..'
                             f'{len(STAGES)}')
        self.widen_factor = widen_factor
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

        self.stage_blocks = _check_stage_blocks(stage_blocks)
        num_blocks = sum(self.stage_blocks)
        if blocks is not None:
            if block_channels is not None:
                raise both_widths_error('ReXNet')
            block_channels = widths_from_blocks(blocks, self.stage_blocks)
        self.block_channels = rexnet_channels(
            widen_factor, divisor, num_blocks) if block_channels is None \
            else check_block_channels(block_channels, num_blocks)
        stem_channels = make_divisible(
            round(32 * max(widen_factor, 1.0)), divisor)
        self.stem = conv_bn(3, stem_channels, 3, 2, act=nn.SiLU())

        in_channels, index = stem_channels, 0
        self.stages = nn.ModuleList()
        for n, (_, first_stride, use_se) in zip(self.stage_blocks, STAGES):
            blocks = []
            for j in range(n):
                out_channels = self.block_channels[index]
                expand_ratio = 1 if index == 0 else 6
                hidden = in_channels * expand_ratio
                se_hidden = make_divisible(hidden // se_ratio, divisor) \
                    if use_se else 0
                blocks.append(LinearBottleneck(
                    in_channels, out_channels, expand_ratio,
                    first_stride if j == 0 else 1, se_hidden))
                in_channels, index = out_channels, index + 1
            self.stages.append(nn.Sequential(*blocks))

        # truncated, as in the published models
        self.out_channels = make_divisible(int(1280 * widen_factor),
                                           divisor)
        self.conv_head = conv_bn(in_channels, self.out_channels,
                                 act=nn.SiLU())
        self._freeze_stages()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.stem(x)
        outs = []
        for i, stage in enumerate([*self.stages, self.conv_head]):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        for module in [self.stem, *self.stages[:self.frozen_stages]]:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> ReXNet:
        """Sets the mode, keeping frozen stages and (``norm_eval``) BNs in
        eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self
