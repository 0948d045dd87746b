"""FBNet's layer-wise search space.

Wu et al., "FBNet: Hardware-Aware Efficient ConvNet Design via
Differentiable Neural Architecture Search", CVPR 2019 (arXiv:1812.03443).
A fixed macro-architecture whose searchable layers each choose one of a few
candidate blocks:

- stem: 3x3 conv, stride 2, 16 channels, BN, ReLU;
- searchable layers in stages of 1, 4, 4, 4, 4, 4, 1 with 16, 24, 32, 64,
  112, 184, 352 output channels, the first layer of each stage with stride
  1, 2, 2, 2, 1, 2, 1;
- last: 1x1 conv to 1984 channels, BN, ReLU (then the classifier's pooling
  and linear head).

A candidate ``k{K}_e{E}[_g2]`` is an inverted bottleneck: 1x1 conv to E
times the input channels (groups G), BN, ReLU, a channel shuffle when
G > 1, KxK depthwise conv (the layer's stride), BN, ReLU, 1x1 conv to the
output channels (groups G), BN, and a residual add when the shapes allow.
``skip`` is the identity; it is offered only where a layer keeps its
input's shape.

In a supernet every searchable layer is a :class:`ChoiceLayer` holding all
its candidates; the search algorithm sets each layer's mixing weights (or
one active candidate). With ``blocks`` (a channel_cfg's ``blocks:``
section, or the file) each layer holds only its chosen block: the static
network to retrain and export.
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import torch
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from torch import nn

from ...channel_cfg import choices_by_layer, read_channel_cfg
from ...errors import ConfigError
from ...registry import MODELS

CANDIDATES = ('k3_e1', 'k3_e1_g2', 'k3_e3', 'k3_e6', 'k5_e1', 'k5_e1_g2',
              'k5_e3', 'k5_e6', 'skip')
# (layers, output channels, stride of the first layer) per stage.
STAGES = ((1, 16, 1), (4, 24, 2), (4, 32, 2), (4, 64, 2), (4, 112, 1),
          (4, 184, 2), (1, 352, 1))
_BLOCK_NAME = re.compile(r'^k(\d+)_e(\d+)(?:_g(\d+))?$')


def parse_block_name(name: str) -> tuple[int, int, int] | None:
    """(kernel, expansion, groups) of a block name, None for ``skip``.

    Raises:
        ConfigError: the name is neither ``skip`` nor ``k{K}_e{E}[_g{G}]``.
    """
    if name == 'skip':
        return None
    match = _BLOCK_NAME.match(str(name))
    if not match or int(match[1]) % 2 == 0:
        raise ConfigError(
            f'unknown block {name!r}: use skip or k{{K}}_e{{E}}[_g{{G}}] '
            f'with an odd kernel K, e.g. {", ".join(CANDIDATES)}.')
    return int(match[1]), int(match[2]), int(match[3] or 1)


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, groups: int = 1,
                 relu: bool = True) -> nn.Sequential:
    """Conv (no bias) + BN (+ ReLU) as children conv, bn (, act)."""
    layers = [('conv', nn.Conv2d(in_channels, out_channels, kernel_size,
                                 stride, kernel_size // 2, groups=groups,
                                 bias=False)),
              ('bn', nn.BatchNorm2d(out_channels))]
    if relu:
        layers.append(('act', nn.ReLU(inplace=True)))
    return nn.Sequential(OrderedDict(layers))


class ChannelShuffle(nn.Module):
    """Interleaves the channels of ``groups`` groups (ShuffleNet)."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(
            1, 2).reshape(n, c, h, w)


class FBNetBlock(nn.Module):
    """FBNet's inverted bottleneck candidate (see the module docstring).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: stride of the depthwise conv.
        kernel_size: kernel of the depthwise conv.
        expansion: hidden channels = expansion x in_channels.
        groups: groups of both 1x1 convs (a shuffle follows the first).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 kernel_size: int, expansion: int, groups: int = 1) -> None:
        super().__init__()
        hidden = in_channels * expansion
        if any(c % groups for c in (in_channels, hidden, out_channels)):
            raise ConfigError(
                f'a block with groups={groups} needs channels divisible by '
                f'{groups}, got {in_channels} -> {hidden} -> {out_channels}.')
        self.expand = conv_bn_relu(in_channels, hidden, 1, groups=groups)
        self.shuffle = ChannelShuffle(groups) if groups > 1 \
            else nn.Identity()
        self.depthwise = conv_bn_relu(hidden, hidden, kernel_size, stride,
                                      groups=hidden)
        self.project = conv_bn_relu(hidden, out_channels, 1, groups=groups,
                                    relu=False)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.shuffle(self.expand(x))))
        return x + out if self.residual else out


def build_block(name: str, in_channels: int, out_channels: int,
                stride: int) -> nn.Module:
    """The candidate ``name`` for a layer of the given shape."""
    spec = parse_block_name(name)
    if spec is None:
        if stride != 1 or in_channels != out_channels:
            raise ConfigError(
                f'skip cannot change the shape ({in_channels} -> '
                f'{out_channels} channels, stride {stride}); choose a block.')
        return nn.Identity()
    kernel, expansion, groups = spec
    return FBNetBlock(in_channels, out_channels, stride, kernel, expansion,
                      groups)


class ChoiceLayer(nn.Module):
    """One searchable layer: candidate blocks of the same output shape.

    The output is ``sum_i weights[i] * candidate_i(x)`` while the search
    algorithm sets :attr:`weights`, else the :attr:`active` candidate's,
    else (nothing set) the plain mean of all candidates.

    Args:
        candidates: name -> block.
    """

    def __init__(self, candidates: Mapping[str, nn.Module]) -> None:
        super().__init__()
        self.candidates = nn.ModuleDict(candidates)
        self.weights: torch.Tensor | None = None
        self.active: str | None = None

    @property
    def names(self) -> list[str]:
        """The candidates' names, in order."""
        return list(self.candidates)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weights is not None:
            return sum(w * block(x) for w, block in zip(
                self.weights, self.candidates.values()))
        if self.active is not None:
            return self.candidates[self.active](x)
        if len(self.candidates) == 1:
            return next(iter(self.candidates.values()))(x)
        return sum(block(x) for block in self.candidates.values()) / len(
            self.candidates)


@MODELS.register_module()
class FBNetSearchSpace(BaseBackbone):
    """FBNet's macro-architecture with a choice of block per layer.

    Args:
        stages: (layers, output channels, stride of the first layer) per
            stage; FBNet's by default.
        candidates: block names every layer may choose (``skip`` is left
            out where a layer changes the shape).
        stem_channels: output channels of the 3x3 stem conv.
        stem_stride: its stride (1 for 32x32 inputs).
        last_channels: output channels of the final 1x1 conv (0: none).
        in_channels: input image channels.
        blocks: the static network: layer -> block name, as a mapping, a
            channel_cfg (path or mapping) with a ``blocks:`` section, or
            None for the supernet. Layer names are ``layers.<i>``, with or
            without the ``backbone.`` prefix of a channel_cfg.
        init_cfg: mmengine init config.
    """
    # the channel groups are those of the network ``blocks`` builds: a
    # channel_cfg's blocks: are passed at build time (SlimmableNetwork)
    CHANNEL_GROUPS_FOLLOW_BLOCKS = True

    def __init__(self,
                 stages: Sequence[Sequence[int]] = STAGES,
                 candidates: Sequence[str] = CANDIDATES,
                 stem_channels: int = 16,
                 stem_stride: int = 2,
                 last_channels: int = 1984,
                 in_channels: int = 3,
                 blocks: Mapping | str | os.PathLike | None = None,
                 init_cfg: dict | list | None = None) -> None:
        super().__init__(init_cfg)
        if not candidates:
            raise ConfigError('FBNetSearchSpace: candidates is empty; name '
                              f'blocks such as {", ".join(CANDIDATES)}.')
        for name in candidates:
            parse_block_name(name)
        self.candidate_names = tuple(candidates)
        self.stem = conv_bn_relu(in_channels, stem_channels, 3, stem_stride)
        shapes = _layer_shapes(stages, stem_channels)
        chosen = _read_blocks(blocks, len(shapes), self.candidate_names)
        self.layers = nn.ModuleList()
        for index, (cin, cout, stride) in enumerate(shapes):
            names = [chosen[index]] if chosen else [
                n for n in self.candidate_names
                if n != 'skip' or (stride == 1 and cin == cout)]
            self.layers.append(ChoiceLayer(
                {n: build_block(n, cin, cout, stride) for n in names}))
        out = shapes[-1][1]
        self.last = conv_bn_relu(out, last_channels, 1) if last_channels \
            else nn.Identity()
        self.out_channels = last_channels or out

    def choice_layers(self) -> dict[str, ChoiceLayer]:
        """The layers with more than one candidate, by name."""
        return {f'layers.{i}': layer for i, layer in enumerate(self.layers)
                if len(layer.candidates) > 1}

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        return (self.last(x), )


def _layer_shapes(stages: Sequence[Sequence[int]], stem_channels: int
                  ) -> list[tuple[int, int, int]]:
    """(in channels, out channels, stride) of every searchable layer."""
    if not stages or not all(len(s) == 3 and all(
            isinstance(v, int) and v >= 1 for v in s) for s in stages):
        raise ConfigError(f'FBNetSearchSpace: stages must be (layers, '
                          f'channels, stride) triples of positive integers, '
                          f'got {stages!r}.')
    shapes, cin = [], stem_channels
    for layers, channels, stride in stages:
        for i in range(layers):
            shapes.append((cin, channels, stride if i == 0 else 1))
            cin = channels
    return shapes


def _read_blocks(blocks, num_layers: int, allowed: Sequence[str]
                 ) -> list[str] | None:
    """Layer index -> block name of a static network (None: supernet)."""
    if blocks is None:
        return None
    source = blocks if isinstance(blocks, (str, os.PathLike)) else 'blocks'
    if isinstance(blocks, (str, os.PathLike)) or 'blocks' in blocks:
        blocks = read_channel_cfg(blocks).blocks
    layers = [f'layers.{i}' for i in range(num_layers)]
    chosen = choices_by_layer(blocks, layers, source, allowed=allowed)
    return [chosen[layer] for layer in layers]
