"""FBNetV2's search space: widths, expansions and kernels of every block.

Wan et al., "FBNetV2: Differentiable Neural Architecture Search for Spatial
and Channel Dimensions", CVPR 2020 (arXiv:2004.05565). A macro-architecture
of inverted-bottleneck blocks in stages; DMaskingNAS searches, jointly:

- the output width of the stem, of every stage and of the last 1x1 conv
  (one choice per stage: the blocks after a stage's first add their input
  to their output, so the stage's residual stream has one width);
- the expansion of every block: the width of its 1x1 expansion, candidates
  ``e * max input width`` (FBNetV2 counts the expansion from the widest
  input of the space, not the chosen one);
- the depthwise kernel of every block (e.g. 3 or 5): FBNet's block choice,
  a weighted sum of the candidates' outputs with Gumbel weights;
- the input resolution (:class:`~mmchansearch.resolution.ResolutionMixer`,
  set on the algorithm).

The widths are channel groups of the toolbox's analysis, searched with
weighted masks (:mod:`mmchansearch.channel_masks`); this module only builds
the max-width network and names the candidates
(:meth:`FBNetV2SearchSpace.channel_candidates`).

A block is ``expand`` (1x1 conv, BN, ReLU), ``depthwise`` (a
:class:`~mmchansearch.models.backbones.fbnet.ChoiceLayer` of ``k{K}``
candidates: KxK depthwise conv with the block's stride, BN, ReLU; each
kernel has its own weights and batch norm, nothing is shared between
kernels), ``project`` (1x1 conv, BN) and the residual add (every block of a
stage but the first). With ``blocks`` (a channel_cfg's ``blocks:``
section, or the file) each depthwise layer holds only its chosen kernel:
the static network to retrain and export, with the supernet's parameter
names.
"""
from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence

import torch
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from torch import nn

from ...channel_cfg import read_channel_cfg
from ...errors import ChannelConfigError, ConfigError
from ...registry import MODELS
from .fbnet import ChoiceLayer, conv_bn_relu

FBNETV2_EXPANSIONS = (0.75, 1.5, 2.25, 3.0, 3.75, 4.5)
# The ImageNet default; configs/_base_/models/fbnetv2_imagenet.py
# says where each number comes from.
FBNETV2_STAGES = (
    dict(blocks=1, stride=1, channels=(12, 16), expansions=(1, ),
         kernels=(3, 5)),
    dict(blocks=3, stride=2, channels=(16, 20, 24, 28),
         expansions=FBNETV2_EXPANSIONS, kernels=(3, 5)),
    dict(blocks=3, stride=2, channels=(16, 24, 32, 40),
         expansions=FBNETV2_EXPANSIONS, kernels=(3, 5)),
    dict(blocks=3, stride=2, channels=tuple(range(48, 97, 8)),
         expansions=FBNETV2_EXPANSIONS, kernels=(3, 5)),
    dict(blocks=4, stride=1, channels=tuple(range(72, 129, 8)),
         expansions=FBNETV2_EXPANSIONS, kernels=(3, 5)),
    dict(blocks=4, stride=2, channels=tuple(range(112, 217, 8)),
         expansions=FBNETV2_EXPANSIONS, kernels=(3, 5)),
)
_STAGE_KEYS = ('blocks', 'stride', 'channels', 'expansions', 'kernels')


def _widths(value, name: str) -> tuple[int, ...]:
    """Candidate widths: an int or a non-empty list of positive ints,
    returned sorted without repeats."""
    widths = (value, ) if isinstance(value, int) else value
    if not (isinstance(widths, (list, tuple)) and widths and all(
            isinstance(w, int) and not isinstance(w, bool) and w >= 1
            for w in widths)):
        raise ConfigError(f'FBNetV2SearchSpace: {name} must be a positive '
                          f'width or a list of them, got {value!r}.')
    return tuple(sorted(set(widths)))


def _check_stage(index: int, stage) -> dict:
    if not (isinstance(stage, Mapping) and set(stage) == set(_STAGE_KEYS)):
        raise ConfigError(
            f'FBNetV2SearchSpace: stage {index} must be a dict with the keys '
            f'{", ".join(_STAGE_KEYS)}, got {stage!r}.')
    stage = dict(stage)
    for key in ('blocks', 'stride'):
        if not (isinstance(stage[key], int) and stage[key] >= 1):
            raise ConfigError(f'FBNetV2SearchSpace: stage {index} {key} '
                              f'must be an integer >= 1, got {stage[key]!r}.')
    stage['channels'] = _widths(stage['channels'], f'stage {index} channels')
    expansions, kernels = stage['expansions'], stage['kernels']
    if not (isinstance(expansions, (list, tuple)) and expansions and all(
            isinstance(e, (int, float)) and e > 0 for e in expansions)):
        raise ConfigError(f'FBNetV2SearchSpace: stage {index} expansions '
                          f'must be positive numbers, got {expansions!r}.')
    if not (isinstance(kernels, (list, tuple)) and kernels and all(
            isinstance(k, int) and k >= 1 and k % 2 for k in kernels)):
        raise ConfigError(f'FBNetV2SearchSpace: stage {index} kernels must '
                          f'be odd kernel sizes, got {kernels!r}.')
    stage['expansions'] = tuple(sorted(set(expansions)))
    stage['kernels'] = tuple(sorted(set(kernels)))
    return stage


def expansion_widths(expansions: Sequence[float], max_input: int,
                     divisor: int) -> tuple[int, ...]:
    """The expansion-layer widths of a block: ``e * max_input`` rounded to
    the nearest multiple of ``divisor`` (at least one ``divisor``)."""
    return tuple(sorted({max(divisor, int(e * max_input / divisor + 0.5)
                             * divisor) for e in expansions}))


class FBNetV2Block(nn.Module):
    """An inverted bottleneck with a choice of depthwise kernels.

    Args:
        in_channels: input channels (max).
        hidden: expansion channels (max).
        out_channels: output channels (max).
        stride: stride of the depthwise conv.
        kernels: candidate depthwise kernel sizes (``k{K}`` candidates).
        residual: add the input to the output.
    """

    def __init__(self, in_channels: int, hidden: int, out_channels: int,
                 stride: int, kernels: Sequence[int],
                 residual: bool) -> None:
        super().__init__()
        self.expand = conv_bn_relu(in_channels, hidden, 1)
        self.depthwise = ChoiceLayer({
            f'k{k}': conv_bn_relu(hidden, hidden, k, stride, groups=hidden)
            for k in kernels})
        self.project = conv_bn_relu(hidden, out_channels, 1, relu=False)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.residual else out


@MODELS.register_module()
class FBNetV2SearchSpace(BaseBackbone):
    """FBNetV2's macro-architecture at its max widths, with every width,
    expansion and kernel a searchable choice (see the module docstring).

    Args:
        stages: one dict per stage: ``blocks`` (number), ``stride`` (of
            its first block), ``channels`` (candidate output widths),
            ``expansions`` (candidate expansion ratios, of the block's max
            input width), ``kernels`` (candidate depthwise kernel sizes).
        stem_channels: candidate widths of the 3x3 stem conv.
        stem_stride: its stride (1 for 32x32 inputs).
        last_channels: candidate widths of the final 1x1 conv (0: none).
        in_channels: input image channels.
        divisor: expansion widths are rounded to multiples of it.
        blocks: the static network: layer -> kernel candidate (``k3``), as
            a mapping, a channel_cfg (path or mapping) with a ``blocks:``
            section, or None for the supernet. Layer names are
            ``layers.<i>``, with or without the ``backbone.`` prefix; every
            layer with several kernels needs one.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 stages: Sequence[Mapping] = FBNETV2_STAGES,
                 stem_channels: int | Sequence[int] = 16,
                 stem_stride: int = 2,
                 last_channels: int | Sequence[int] = 1984,
                 in_channels: int = 3,
                 divisor: int = 8,
                 blocks: Mapping | str | os.PathLike | None = None,
                 init_cfg: dict | list | None = None) -> None:
        super().__init__(init_cfg)
        if not (isinstance(stages, (list, tuple)) and stages):
            raise ConfigError('FBNetV2SearchSpace: stages must be a '
                              'non-empty list of stage dicts, got '
                              f'{stages!r}.')
        if not (isinstance(divisor, int) and divisor >= 1):
            raise ConfigError(f'FBNetV2SearchSpace: divisor must be an '
                              f'integer >= 1, got {divisor!r}.')
        stages = [_check_stage(i, s) for i, s in enumerate(stages)]
        stem = _widths(stem_channels, 'stem_channels')
        self.stem = conv_bn_relu(in_channels, stem[-1], 3, stem_stride)
        self._candidates: dict[str, tuple[int, ...]] = {'stem.conv': stem}
        self.layers = nn.ModuleList()
        cin = stem[-1]
        for stage in stages:
            cout = stage['channels'][-1]
            for i in range(stage['blocks']):
                hidden = expansion_widths(stage['expansions'], cin, divisor)
                index = len(self.layers)
                self._candidates[f'layers.{index}.expand.conv'] = hidden
                if i == 0:  # a stage's first block starts its stream
                    self._candidates[f'layers.{index}.project.conv'] = \
                        stage['channels']
                self.layers.append(FBNetV2Block(
                    cin, hidden[-1], cout, stage['stride'] if i == 0 else 1,
                    stage['kernels'], residual=i > 0))
                cin = cout
        if last_channels:
            last = _widths(last_channels, 'last_channels')
            self.last = conv_bn_relu(cin, last[-1], 1)
            self._candidates['last.conv'] = last
            self.out_channels = last[-1]
        else:
            self.last, self.out_channels = nn.Identity(), cin
        if blocks is not None:
            self.keep_blocks(_read_blocks(blocks, self.kernel_options()))

    def kernel_options(self) -> dict[str, list[str]]:
        """``layers.<i>`` -> the names of its kernel candidates."""
        return {f'layers.{i}': layer.depthwise.names
                for i, layer in enumerate(self.layers)}

    def choice_layers(self) -> dict[str, ChoiceLayer]:
        """``layers.<i>`` -> its depthwise choice, for the layers with more
        than one kernel."""
        return {f'layers.{i}': layer.depthwise
                for i, layer in enumerate(self.layers)
                if len(layer.depthwise.candidates) > 1}

    def channel_candidates(self) -> dict[str, tuple[int, ...]]:
        """Producer module (relative to the backbone) -> candidate widths of
        the channel group it starts: the stem, every expansion, every
        stage's stream and the last conv."""
        return dict(self._candidates)

    def keep_blocks(self, blocks: Mapping[str, str]) -> None:
        """Keeps only the chosen kernel of every layer (``layers.<i>`` or
        ``backbone.layers.<i>`` -> candidate name).

        Raises:
            ChannelConfigError: an unknown layer or candidate, or a layer
                with several kernels left out.
        """
        chosen = _check_blocks(blocks, self.kernel_options(), 'blocks')
        for i, layer in enumerate(self.layers):
            name = chosen.get(f'layers.{i}')
            if name is None:
                continue
            choice = layer.depthwise
            choice.candidates = nn.ModuleDict(
                {name: choice.candidates[name]})
            choice.weights = choice.active = None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        return (self.last(x), )


def keep_chosen_blocks(classifier: nn.Module,
                       blocks: Mapping[str, str]) -> None:
    """Keeps only the chosen kernels (a channel_cfg's ``blocks:``) in a
    classifier whose backbone is an :class:`FBNetV2SearchSpace`; other
    classifiers are left as they are."""
    backbone = getattr(classifier, 'backbone', None)
    if isinstance(backbone, FBNetV2SearchSpace):
        backbone.keep_blocks(blocks)


def _read_blocks(blocks, options: Mapping[str, list[str]]
                 ) -> dict[str, str]:
    """The ``blocks`` argument as layer -> kernel candidate."""
    source = blocks if isinstance(blocks, (str, os.PathLike)) else 'blocks'
    if isinstance(blocks, (str, os.PathLike)) or 'blocks' in blocks:
        blocks = read_channel_cfg(blocks).blocks
    return _check_blocks(blocks, options, source)


def _check_blocks(blocks: Mapping, options: Mapping[str, list[str]],
                  source: str) -> dict[str, str]:
    """Validates layer -> candidate against the space's options."""
    chosen = {}
    for key, name in blocks.items():
        layer = str(key).removeprefix('backbone.')
        if layer not in options:
            close = difflib.get_close_matches(layer, list(options), 1)
            hint = f' (did you mean {close[0]}?)' if close else ''
            raise ChannelConfigError(
                f'{source}: unknown layer {key!r}{hint}; this space has '
                f'layers.0 .. layers.{len(options) - 1}.')
        if name not in options[layer]:
            raise ChannelConfigError(
                f'{source}: layer {key!r} has no kernel candidate {name!r}; '
                f'its candidates are {", ".join(options[layer])}.')
        chosen[layer] = name
    missing = [layer for layer, names in options.items()
               if len(names) > 1 and layer not in chosen]
    if missing:
        raise ChannelConfigError(
            f'{source}: no kernel for {missing[0]} ({len(missing)} layers '
            'missing); every layer with several kernel candidates needs one '
            '(the derived.yaml of an FBNetV2 search names them all).')
    return chosen
