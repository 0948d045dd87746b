"""The plain inverted-bottleneck network of ReXNet's channel search.

Han et al. (CVPR 2021) searched channel parameterizations not with the
ReXNet block but with a plain MobileNetV2-style network on CIFAR-style
(32x32) data, its stem 16 channels wide. This is that network with every
block's output width an argument (the search space of
``ReXNetSearchLoop``):

- stem: 3x3 conv (stride ``stem_stride``, 1 for CIFAR-style inputs),
  ``stem_channels`` (16) channels, BN, ReLU6;
- stages of inverted bottlenecks (MobileNetV2's block: 1x1 expansion conv
  + BN + ReLU6, 3x3 depthwise conv + BN + ReLU6, linear 1x1 projection +
  BN; no squeeze-excitation), expansion 1 in the first block and
  ``expand_ratio`` (6) after; the first block of a stage has the stage's
  stride; the input is added to the output of a stride-1 block whose width
  it keeps (MobileNetV2's residual; ``partial_residual=True`` adds it to the
  first input channels of a wider output, as ReXNet does);
- a last 1x1 conv to ``out_channels`` channels, BN, ReLU6.

The default layout is ReXNet's six stages of 1, 2, 2, 3, 3, 5 blocks with
the strides of a CIFAR-style MobileNetV2 (1, 1, 2, 2, 1, 2: the 32x32 input
ends at 4x4).
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from torch import nn

from ...errors import ConfigError
from ...registry import MODELS
from .rexnet import (
    LinearBottleneck,
    both_widths_error,
    check_block_channels,
    conv_bn,
    rexnet_channels,
    widths_from_blocks,
)

DEFAULT_STAGE_BLOCKS = (1, 2, 2, 3, 3, 5)
CIFAR_STAGE_STRIDES = (1, 1, 2, 2, 1, 2)


def _positive_ints(name: str, values: Sequence[int],
                   allowed: Sequence[int] | None = None) -> tuple[int, ...]:
    values = tuple(values)
    ok = len(values) >= 1 and all(isinstance(v, int) and v >= 1
                                  for v in values)
    if ok and allowed is not None:
        ok = all(v in allowed for v in values)
    if not ok:
        raise ConfigError(
            f'PlainInvertedBottleneckNet {name} must be a list of '
            f'{"1s and 2s" if allowed else "integers >= 1"}, got '
            f'{list(values)}.')
    return values


@MODELS.register_module()
class PlainInvertedBottleneckNet(BaseBackbone):
    """Plain MobileNetV2-style inverted-bottleneck network with explicit
    block widths (see the module docstring).

    Args:
        block_channels: output channels of every block (one per block,
            non-decreasing); None for ReXNet's 1.0x linear rule
            (``16 + i * 180 / num_blocks``).
        stage_blocks: blocks per stage.
        stage_strides: stride of each stage's first block (1 or 2), one per
            stage.
        stem_channels: output channels of the stem conv.
        stem_stride: stride of the stem conv (1 or 2).
        expand_ratio: hidden over input channels of every block but the
            first (which has 1).
        out_channels: channels of the last 1x1 conv.
        partial_residual: ReXNet's partial residual instead of
            MobileNetV2's.
        out_indices: outputs to return: ``0..len(stage_blocks) - 1`` the
            stages, ``len(stage_blocks)`` the last conv.
        init_cfg: mmengine init config; None for Kaiming-normal convs and
            unit BN weights.
        blocks: the block widths as a choice per block (``stages.<s>.<j>``
            -> output width), a mapping or a channel_cfg (path or mapping)
            with a ``blocks:`` section; instead of ``block_channels``.
    """
    # see ReXNet: a channel_cfg's blocks: build the network
    CHANNEL_GROUPS_FOLLOW_BLOCKS = True

    def __init__(self,
                 block_channels: Sequence[int] | None = None,
                 stage_blocks: Sequence[int] = DEFAULT_STAGE_BLOCKS,
                 stage_strides: Sequence[int] = CIFAR_STAGE_STRIDES,
                 stem_channels: int = 16,
                 stem_stride: int = 1,
                 expand_ratio: int = 6,
                 out_channels: int = 1280,
                 partial_residual: bool = False,
                 out_indices: Sequence[int] | None = None,
                 init_cfg: dict | list[dict] | None = None,
                 blocks: Mapping | str | os.PathLike | None = None) -> None:
        if init_cfg is None:
            init_cfg = [dict(type='Kaiming', layer=['Conv2d']),
                        dict(type='Constant', val=1, layer=['_BatchNorm'])]
        super().__init__(init_cfg)
        self.stage_blocks = _positive_ints('stage_blocks', stage_blocks)
        strides = _positive_ints('stage_strides', stage_strides, (1, 2))
        if len(strides) != len(self.stage_blocks):
            raise ConfigError(
                f'PlainInvertedBottleneckNet has {len(self.stage_blocks)} '
                f'stages (stage_blocks) but {len(strides)} stage_strides; '
                'give one stride per stage.')
        for name, value in (('stem_channels', stem_channels),
                            ('expand_ratio', expand_ratio),
                            ('out_channels', out_channels)):
            _positive_ints(name, [value])
        _positive_ints('stem_stride', [stem_stride], (1, 2))
        num_stages = len(self.stage_blocks)
        self.out_indices = (num_stages, ) if out_indices is None \
            else tuple(out_indices)
        for index in self.out_indices:
            if index not in range(num_stages + 1):
                raise ConfigError(
                    f'PlainInvertedBottleneckNet out_indices: {index} not '
                    f'in 0..{num_stages} (the stages, then the last conv).')
        num_blocks = sum(self.stage_blocks)
        if blocks is not None:
            if block_channels is not None:
                raise both_widths_error('PlainInvertedBottleneckNet')
            block_channels = widths_from_blocks(
                blocks, self.stage_blocks, 'PlainInvertedBottleneckNet')
        self.block_channels = rexnet_channels(num_blocks=num_blocks) \
            if block_channels is None else check_block_channels(
                block_channels, num_blocks, 'PlainInvertedBottleneckNet')

        self.stem = conv_bn(3, stem_channels, 3, stem_stride,
                            act=nn.ReLU6())
        in_channels, index = stem_channels, 0
        self.stages = nn.ModuleList()
        for n, stride in zip(self.stage_blocks, strides):
            blocks = []
            for j in range(n):
                out = self.block_channels[index]
                blocks.append(LinearBottleneck(
                    in_channels, out, 1 if index == 0 else expand_ratio,
                    stride if j == 0 else 1, expand_act=nn.ReLU6,
                    partial_residual=partial_residual))
                in_channels, index = out, index + 1
            self.stages.append(nn.Sequential(*blocks))
        self.out_channels = out_channels
        self.conv_head = conv_bn(in_channels, out_channels, act=nn.ReLU6())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Returns the outputs of ``out_indices``.

        Args:
            x: images, (N, 3, H, W).

        Returns:
            One tensor per index of ``out_indices``.
        """
        x = self.stem(x)
        outs = []
        for i, stage in enumerate([*self.stages, self.conv_head]):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
