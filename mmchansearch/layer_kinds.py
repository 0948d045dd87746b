"""What each kind of channel-carrying layer means to the toolbox.

The channel analysis sorts every sliceable layer into a *kind*: 'conv', a
depthwise 'dwconv', 'linear' or a batch norm 'bn'. Everything that
differs between kinds outside the dynamic layers themselves lives in one
:class:`LayerKind` handler per kind, registered in :data:`LAYER_KINDS`:
which channels it has and where (output = its own group, or its input's),
its FLOPs and parameter coefficients, the op a latency table times for
it, how it is rebuilt at other widths (Network Adjustment) and how a mask
multiplies its channels. The estimator, the latency model, the widening
and the channel masks ask the handler, so a new layer kind is one handler
here (plus its dynamic version in :mod:`mmchansearch.dynamic_ops` and the
analysis' rule for recognising it) and a test.

This module imports nothing of the package: every other module may use
it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class CostCoefficients:
    """A layer's FLOPs and params as a function of its widths.

    With ``cin`` input channels per conv group and ``cout`` output
    channels: FLOPs = (flops_per_pair * cin + flops_per_out) * cout,
    params = (params_per_pair * cin + params_per_out) * cout.

    Attributes:
        flops_per_pair: FLOPs per (input channel / groups, output) pair.
        params_per_pair: weight entries per such pair.
        params_per_out: bias / affine entries per output channel.
        flops_per_out: FLOPs per output channel with no input factor
            (a depthwise conv).
        groups: a grouped conv's input is split this many ways.
    """
    flops_per_pair: int
    params_per_pair: int
    params_per_out: int
    flops_per_out: int
    groups: int = 1


# An op a latency table times: (signature, build, one input sample's shape).
OpParts = tuple[str, Callable[[], nn.Module], tuple[int, ...]]


def _new_parameter(like: torch.Tensor | None, *shape: int
                   ) -> nn.Parameter | None:
    if like is None:
        return None
    return nn.Parameter(torch.empty(*shape, dtype=like.dtype,
                                    device=like.device),
                        requires_grad=like.requires_grad)


def _bias(module: nn.Module) -> int:
    return 1 if getattr(module, 'bias', None) is not None else 0


class LayerKind(ABC):
    """One kind of channel-carrying layer.

    Attributes:
        name: the kind's name in :class:`~mmchansearch.analysis.LayerInfo`.
        produces: its output channels are a group of its own (conv,
            linear); otherwise they are its input's (batch norm, depthwise
            conv: a *follower*).
        channels_last: its channels are the last dim of its input and
            output (linear), not dim 1.
    """
    name: str
    produces: bool = False
    channels_last: bool = False

    @abstractmethod
    def cost(self, module: nn.Module, positions: int) -> CostCoefficients:
        """Its FLOPs and params coefficients at ``positions`` output
        positions per channel."""

    def op(self, module: nn.Module, cin: int, cout: int,
           in_shape: Sequence[int]) -> OpParts | None:
        """The op it runs at these widths, for a latency table (None: not
        timed, e.g. a batch norm)."""
        return None

    @abstractmethod
    def resize(self, module: nn.Module, cin: int, cout: int) -> None:
        """Rebuilds it in place at these widths, with fresh weights."""

    def mask(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` (its input or output) times ``mask`` over its channels:
        (C,) for every sample or (N, C) per sample."""
        mask = mask.to(device=x.device, dtype=x.dtype)
        batch = mask.shape[0] if mask.dim() == 2 else 1
        if self.channels_last:
            return x * mask.view(batch, *[1] * (x.dim() - 2), -1)
        return x * mask.view(batch, -1, *[1] * (x.dim() - 2))

    def channels(self, x: torch.Tensor) -> int:
        """The channel count of its input or output ``x``."""
        return x.shape[-1 if self.channels_last else 1]


def _conv_signature(conv: nn.Conv2d, cin: int, cout: int, groups: int,
                    hw: Sequence[int]) -> str:
    k, s, p, d = (tuple(conv.kernel_size), tuple(conv.stride),
                  tuple(conv.padding), tuple(conv.dilation))
    return (f'conv2d:{cin}x{hw[0]}x{hw[1]}->{cout}:k{k}:s{s}:p{p}:d{d}'
            f':g{groups}:bias{int(conv.bias is not None)}')


class Conv(LayerKind):
    """A Conv2d (grouped or not) writing a group of its own."""
    name = 'conv'
    produces = True

    def _groups(self, module: nn.Conv2d, cin: int) -> int:
        return module.groups

    def cost(self, module: nn.Conv2d, positions: int) -> CostCoefficients:
        kernel = module.kernel_size[0] * module.kernel_size[1]
        return CostCoefficients(kernel * positions, kernel, _bias(module), 0,
                                module.groups)

    def op(self, module: nn.Conv2d, cin: int, cout: int,
           in_shape: Sequence[int]) -> OpParts:
        groups, bias = self._groups(module, cin), module.bias is not None
        hw = tuple(in_shape[1:])
        signature = _conv_signature(module, cin, cout, groups, hw)
        own_class = getattr(module, 'static_class', None)
        if own_class is not None:
            # a conv with a forward of its own (mmcv's Conv2dAdaptivePadding:
            # TF 'same' padding from the input size): timed as that class
            return (signature + f':{own_class.__name__}',
                    lambda: own_class(cin, cout, module.kernel_size,
                                      module.stride, module.padding,
                                      module.dilation, groups, bias),
                    (cin, *hw))
        return (signature,
                lambda: nn.Conv2d(cin, cout, module.kernel_size,
                                  module.stride, module.padding,
                                  module.dilation, groups, bias),
                (cin, *hw))

    def resize(self, module: nn.Conv2d, cin: int, cout: int) -> None:
        groups = self._groups(module, cin)
        if cin % groups or cout % groups:
            raise ValueError(f'widths {cin}->{cout} are not multiples of the '
                             f'{groups} groups of a grouped conv')
        module.in_channels, module.out_channels = cin, cout
        module.groups = groups
        module.weight = _new_parameter(module.weight, cout, cin // groups,
                                       *module.kernel_size)
        if module.bias is not None:
            module.bias = _new_parameter(module.bias, cout)
        module.reset_parameters()


class DepthwiseConv(Conv):
    """A depthwise Conv2d: one filter per input channel, a follower."""
    name = 'dwconv'
    produces = False

    def _groups(self, module: nn.Conv2d, cin: int) -> int:
        return cin

    def cost(self, module: nn.Conv2d, positions: int) -> CostCoefficients:
        kernel = module.kernel_size[0] * module.kernel_size[1]
        return CostCoefficients(0, 0, kernel + _bias(module),
                                kernel * positions)


class Linear(LayerKind):
    """A Linear layer writing a group of its own; channels last."""
    name = 'linear'
    produces = True
    channels_last = True

    def cost(self, module: nn.Linear, positions: int) -> CostCoefficients:
        return CostCoefficients(positions, 1, _bias(module), 0)

    def op(self, module: nn.Linear, cin: int, cout: int,
           in_shape: Sequence[int]) -> OpParts:
        bias = module.bias is not None
        return (f'linear:{cin}->{cout}:bias{int(bias)}',
                lambda: nn.Linear(cin, cout, bias), (cin, ))

    def resize(self, module: nn.Linear, cin: int, cout: int) -> None:
        module.in_features, module.out_features = cin, cout
        module.weight = _new_parameter(module.weight, cout, cin)
        if module.bias is not None:
            module.bias = _new_parameter(module.bias, cout)
        module.reset_parameters()


class BatchNorm(LayerKind):
    """A batch norm (1d, 2d, sync; timm's BatchNormAct2d): a follower."""
    name = 'bn'

    def cost(self, module: nn.Module, positions: int) -> CostCoefficients:
        return CostCoefficients(0, 0, 2 if getattr(module, 'affine', False)
                                else 0, 0)

    def resize(self, module: nn.Module, cin: int, cout: int) -> None:
        module.num_features = cout
        if module.affine:
            module.weight = _new_parameter(module.weight, cout)
            module.bias = _new_parameter(module.bias, cout)
        if module.track_running_stats:
            for name in ('running_mean', 'running_var'):
                old = getattr(module, name)
                module.register_buffer(name, torch.empty(
                    cout, dtype=old.dtype, device=old.device))
        module.reset_parameters()


LAYER_KINDS: dict[str, LayerKind] = {}


def register_layer_kind(kind: LayerKind) -> LayerKind:
    """Adds a handler to :data:`LAYER_KINDS` under ``kind.name``."""
    if kind.name in LAYER_KINDS:
        raise ValueError(f'layer kind {kind.name!r} is registered already')
    LAYER_KINDS[kind.name] = kind
    return kind


for _kind in (Conv(), DepthwiseConv(), Linear(), BatchNorm()):
    register_layer_kind(_kind)
