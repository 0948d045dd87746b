"""Dynamic (channel-sliceable) layers.

A dynamic layer keeps the max-width weights of the layer it replaces and, on
each forward, uses the first ``k`` channels of them (sequential slicing, as in
slimmable networks). Only the *output* width is looked up, in the
:class:`ChannelWidth` its group shares; the input width is read from the
input tensor, so a layer never disagrees with the layer feeding it.

A layer reading a concatenation of groups (DenseNet) has input
:class:`ChannelParts`: it uses the first channels of *each part* at the
part's offset; a conv whose output is added to a concatenation
(ShuffleNetV1) has output parts the same way.

Layers are converted in place by swapping their class, so parameters,
buffers, state_dict keys and optimizer references stay exactly as they were:
a supernet checkpoint is an ordinary checkpoint of the original model.

Two layers with a forward of their own are sliceable too, their dynamic
versions computing what that forward does: mmcv's ``Conv2dAdaptivePadding``
(EfficientNet; TensorFlow's 'same' padding, from the input size) and timm's
``BatchNormAct2d`` (batch norm, then its ``drop`` and ``act``). They are
recognised by their class's import path, so neither library is imported
here; the export builds that class again, physically smaller.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules._functions import SyncBatchNorm as sync_batch_norm


@dataclass
class ChannelWidth:
    """The current width of one channel group, shared by its layers.

    Attributes:
        name: the group's name.
        max_width: the width of the unmodified model.
        current: the width the dynamic layers use now.
    """
    name: str
    max_width: int
    current: int


def _clone(tensor: torch.Tensor | None) -> torch.Tensor | None:
    return None if tensor is None else tensor.detach().clone()


class ChannelParts:
    """The channels of a layer's input or output that are several groups
    side by side (a concatenation).

    Each part is a group (or a fixed width) at its offset in the full
    channels; at the current widths the layer uses the first channels of
    every part, so its weights are indexed, not sliced.

    Args:
        parts: (the part group's width, or None for a fixed part; the
            part's max width), in channel order.
    """

    def __init__(self, parts: list[tuple[ChannelWidth | None, int]]) -> None:
        self.parts = parts
        self._indices: dict = {}

    def widths(self) -> tuple[int, ...]:
        """The current width of every part."""
        return tuple(max_width if width is None else width.current
                     for width, max_width in self.parts)

    def channels(self) -> int:
        """The channels in use: the parts' current widths added up."""
        return sum(self.widths())

    def index(self, channels: int, device: torch.device
              ) -> torch.Tensor | None:
        """Indices of the channels in use among all of them (None: all);
        ``channels`` (those of the input, or of the output in use) is
        checked against the parts' widths."""
        widths = self.widths()
        if sum(widths) != channels:
            raise ValueError(
                f'input has {channels} channels, the concatenated parts '
                f'{widths} add up to {sum(widths)}')
        if widths == tuple(m for _, m in self.parts):
            return None
        key = (widths, device)
        if key not in self._indices:
            self._indices[key] = parts_in_use(
                widths, [m for _, m in self.parts]).to(device)
        return self._indices[key]


def parts_in_use(widths: Sequence[int], max_widths: Sequence[int]
                 ) -> torch.Tensor:
    """Indices of the channels in use of parts side by side: the first
    ``widths[i]`` channels of every part, each at its offset (the max
    widths of the parts before it) in the full channels."""
    offsets, start = [], 0
    for width, max_width in zip(widths, max_widths):
        offsets.append(torch.arange(start, start + width))
        start += max_width
    return torch.cat(offsets)


def _select(tensor: torch.Tensor, dim: int, channels: int,
            parts: ChannelParts | None) -> torch.Tensor:
    """``tensor``'s entries along ``dim`` for ``channels`` channels: the
    first ones, or the first of each part."""
    if parts is None:
        return tensor.narrow(dim, 0, channels)
    index = parts.index(channels, tensor.device)
    return tensor if index is None else tensor.index_select(dim, index)


class _ReadsChannels:
    """Picks the channels in use from a tensor of a dynamic layer: the
    first ones, or those of each part (``input_parts``, ``output_parts``);
    and checks that its input has the channels the channel analysis
    expects at the current widths (``input_width``, or the parts; a layer
    of fixed input: all of them), so that a model the analysis misread
    fails loudly instead of computing other widths than the estimator
    counts and the export builds."""
    input_parts: ChannelParts | None = None
    output_parts: ChannelParts | None = None
    input_width: ChannelWidth | None = None
    checks_input: bool = False  # set by make_dynamic

    def _check_input(self, channels: int, full: int) -> None:
        if not self.checks_input:
            return
        if self.input_parts is not None:
            expected = self.input_parts.channels()
        elif self.input_width is not None:
            expected = self.input_width.current
        else:
            expected = full
        if channels != expected:
            raise RuntimeError(
                f'a {type(self).__name__} got {channels} input channels '
                f'where the channel analysis expects {expected} at the '
                'current widths: the analysis misread how this model '
                'connects its channels (please report the model); freezing '
                'the groups around this layer (mutator frozen_groups) avoids '
                'it')

    def _input_slice(self, tensor: torch.Tensor, dim: int,
                     channels: int) -> torch.Tensor:
        """``tensor``'s entries along ``dim`` for ``channels`` inputs."""
        return _select(tensor, dim, channels, self.input_parts)

    def _output_slice(self, tensor: torch.Tensor, channels: int
                      ) -> torch.Tensor:
        """``tensor``'s first-dim entries for ``channels`` outputs."""
        return _select(tensor, 0, channels, self.output_parts)


class DynamicConv2d(_ReadsChannels, nn.Conv2d):
    """Conv2d that uses the first channels of its weights.

    A depthwise conv (``depthwise=True``) follows its input width: it uses as
    many groups and filters as its input has channels. A grouped conv keeps
    its group count; its widths must be multiples of it.
    """
    out_width: ChannelWidth | None
    depthwise: bool

    @classmethod
    def convert(cls, conv: nn.Conv2d, out_width: ChannelWidth | None,
                depthwise: bool) -> DynamicConv2d:
        """Turns ``conv`` into a dynamic conv in place and returns it."""
        conv.__class__ = cls
        conv.out_width = out_width
        conv.depthwise = depthwise
        return conv

    def _out_channels_now(self, in_channels: int) -> int:
        if self.depthwise:
            return in_channels
        if self.output_parts is not None:
            return self.output_parts.channels()
        return self.out_channels if self.out_width is None \
            else self.out_width.current

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cin = x.shape[1]
        self._check_input(cin, self.in_channels)
        cout = self._out_channels_now(cin)
        if cin == self.in_channels and cout == self.out_channels:
            return super().forward(x)
        weight, bias = self._weights_in_use(cin, cout)
        groups = cin if self.depthwise else self.groups
        if self.padding_mode != 'zeros':
            x = F.pad(x, self._reversed_padding_repeated_twice,
                      mode=self.padding_mode)
            return F.conv2d(x, weight, bias, self.stride, 0, self.dilation,
                            groups)
        return F.conv2d(x, weight, bias, self.stride, self.padding,
                        self.dilation, groups)

    def _weights_in_use(self, cin: int, cout: int
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Weight and bias for ``cin`` inputs and ``cout`` outputs."""
        if self.depthwise:  # one filter per input channel
            weight = self._input_slice(self.weight, 0, cin)
            bias = None if self.bias is None \
                else self._input_slice(self.bias, 0, cin)
            return weight, bias
        weight = self._output_slice(self.weight, cout)
        if self.groups == 1:
            weight = self._input_slice(weight, 1, cin)
        else:  # the first inputs of every conv group, also over parts
            weight = weight[:, :cin // self.groups]
        return weight, None if self.bias is None \
            else self._output_slice(self.bias, cout)

    def _static_layer(self, in_channels: int, out_channels: int,
                      groups: int) -> nn.Conv2d:
        """An empty static conv of these sizes, otherwise like this one."""
        return nn.Conv2d(in_channels, out_channels, self.kernel_size,
                         self.stride, self.padding, self.dilation, groups,
                         self.bias is not None, self.padding_mode,
                         device=self.weight.device, dtype=self.weight.dtype)

    def to_static(self, in_channels: int) -> nn.Conv2d:
        """A plain Conv2d holding copies of the weights in use."""
        cout = self._out_channels_now(in_channels)
        groups = in_channels if self.depthwise else self.groups
        static = self._static_layer(in_channels, cout, groups)
        weight, bias = self._weights_in_use(in_channels, cout)
        static.weight = nn.Parameter(_clone(weight))
        if bias is not None:
            static.bias = nn.Parameter(_clone(bias))
        return static


def same_padding(x: torch.Tensor, kernel_size: tuple[int, int],
                 stride: tuple[int, int], dilation: tuple[int, int]
                 ) -> torch.Tensor:
    """Zero-pads ``x`` as TensorFlow's 'same' padding: the output has
    ceil(input / stride) positions, the odd pixel going to the end.

    Args:
        x: input of shape (N, C, H, W).
        kernel_size: the conv's (kh, kw).
        stride: the conv's (sh, sw).
        dilation: the conv's (dh, dw).

    Returns:
        ``x`` padded on the right and bottom as much as on the left and top,
        or one more.
    """
    pads = []
    for size, kernel, step, spacing in zip(x.shape[-2:], kernel_size, stride,
                                           dilation):
        out = math.ceil(size / step)
        total = max((out - 1) * step + (kernel - 1) * spacing + 1 - size, 0)
        pads.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = pads
    if top or bottom or left or right:
        x = F.pad(x, [left, right, top, bottom])
    return x


class DynamicConv2dAdaptivePadding(DynamicConv2d):
    """Dynamic version of mmcv's ``Conv2dAdaptivePadding``: pads the input
    to TensorFlow's 'same' output size, then convolves the first channels.

    The padding depends on the input's height and width only, so padding
    first and slicing afterwards is that layer's forward at any width.
    """
    static_class: type | None = None  # set per layer by make_dynamic

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(same_padding(x, self.kernel_size, self.stride,
                                            self.dilation))

    def _static_layer(self, in_channels: int, out_channels: int,
                      groups: int) -> nn.Conv2d:
        """An empty Conv2dAdaptivePadding of these sizes."""
        return self.static_class(
            in_channels, out_channels, self.kernel_size, self.stride, 0,
            self.dilation, groups, self.bias is not None).to(
                device=self.weight.device, dtype=self.weight.dtype)


class DynamicLinear(_ReadsChannels, nn.Linear):
    """Linear layer that uses the first rows/columns of its weights."""
    out_width: ChannelWidth | None

    @classmethod
    def convert(cls, linear: nn.Linear,
                out_width: ChannelWidth | None) -> DynamicLinear:
        """Turns ``linear`` into a dynamic linear layer in place."""
        linear.__class__ = cls
        linear.out_width = out_width
        return linear

    def _out_features_now(self) -> int:
        if self.output_parts is not None:
            return self.output_parts.channels()
        return self.out_features if self.out_width is None \
            else self.out_width.current

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cin, cout = x.shape[-1], self._out_features_now()
        self._check_input(cin, self.in_features)
        if cin == self.in_features and cout == self.out_features:
            return super().forward(x)
        bias = None if self.bias is None else self._output_slice(
            self.bias, cout)
        return F.linear(
            x, self._input_slice(self._output_slice(self.weight, cout), 1,
                                 cin), bias)

    def to_static(self, in_features: int) -> nn.Linear:
        """A plain Linear holding copies of the weights in use."""
        cout = self._out_features_now()
        static = nn.Linear(in_features, cout, self.bias is not None,
                           device=self.weight.device, dtype=self.weight.dtype)
        static.weight = nn.Parameter(_clone(self._input_slice(
            self._output_slice(self.weight, cout), 1, in_features)))
        if self.bias is not None:
            static.bias = nn.Parameter(_clone(
                self._output_slice(self.bias, cout)))
        return static


class _DynamicBatchNorm(_ReadsChannels):
    """Batch norm over the first channels of its statistics and affine
    (or a concatenation's parts: their statistics are updated in place)."""
    static_class: type

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        self._check_input(channels, self.num_features)
        if channels == self.num_features:
            return super().forward(x)
        self._check_input_dim(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or self.running_mean is None
        use_running = not self.training or self.track_running_stats
        running_mean, running_var, weight, bias = (
            None if tensor is None else self._input_slice(tensor, 0, channels)
            for tensor in (
                self.running_mean if use_running else None,
                self.running_var if use_running else None,
                self.weight, self.bias))
        out = self._normalize(x, running_mean, running_var, weight, bias,
                              use_batch_stats, factor)
        if self.input_parts is not None and use_batch_stats \
                and running_mean is not None:
            # indexed statistics are copies: write the update back
            index = self.input_parts.index(channels, x.device)
            with torch.no_grad():
                self.running_mean.index_copy_(0, index, running_mean)
                self.running_var.index_copy_(0, index, running_var)
        return out

    def _normalize(self, x, running_mean, running_var, weight, bias,
                   use_batch_stats: bool, factor: float) -> torch.Tensor:
        return F.batch_norm(x, running_mean, running_var, weight, bias,
                            use_batch_stats, factor, self.eps)

    def to_static(self, num_features: int) -> nn.Module:
        """A plain batch norm of the same kind holding copies of the slices."""
        static = self.static_class(num_features, self.eps, self.momentum,
                            self.affine, self.track_running_stats,
                            device=self._device(), dtype=self._dtype())
        with torch.no_grad():
            for name in ('weight', 'bias'):
                source = getattr(self, name)
                if source is not None:
                    setattr(static, name, nn.Parameter(_clone(
                        self._input_slice(source, 0, num_features))))
            for name in ('running_mean', 'running_var'):
                source = getattr(self, name)
                if source is not None:
                    getattr(static, name).copy_(
                        self._input_slice(source, 0, num_features))
            if self.num_batches_tracked is not None:
                static.num_batches_tracked.copy_(self.num_batches_tracked)
        return static

    def _device(self) -> torch.device:
        for tensor in (self.weight, self.running_mean):
            if tensor is not None:
                return tensor.device
        return torch.device('cpu')

    def _dtype(self) -> torch.dtype:
        for tensor in (self.weight, self.running_mean):
            if tensor is not None:
                return tensor.dtype
        return torch.get_default_dtype()


class DynamicBatchNorm2d(_DynamicBatchNorm, nn.BatchNorm2d):
    """BatchNorm2d over the first channels."""
    static_class = nn.BatchNorm2d


class DynamicBatchNormAct2d(DynamicBatchNorm2d):
    """Dynamic version of timm's ``BatchNormAct2d``: batch norm over the
    first channels, then the layer's own ``drop`` and ``act`` modules."""
    static_class: type | None = None  # set per layer by make_dynamic

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.drop(super().forward(x)))

    def to_static(self, num_features: int) -> nn.Module:
        """A BatchNormAct2d holding copies of the slices, with copies of
        this layer's drop and activation."""
        static = super().to_static(num_features)
        static.drop = copy.deepcopy(self.drop)
        static.act = copy.deepcopy(self.act)
        return static


class DynamicBatchNorm1d(_DynamicBatchNorm, nn.BatchNorm1d):
    """BatchNorm1d over the first channels."""
    static_class = nn.BatchNorm1d


class DynamicSyncBatchNorm(_DynamicBatchNorm, nn.SyncBatchNorm):
    """SyncBatchNorm over the first channels, synchronized when training on
    several processes."""
    static_class = nn.SyncBatchNorm

    def _normalize(self, x, running_mean, running_var, weight, bias,
                   use_batch_stats: bool, factor: float) -> torch.Tensor:
        if not (self.training and torch.distributed.is_available()
                and torch.distributed.is_initialized()):
            return super()._normalize(x, running_mean, running_var, weight,
                                      bias, use_batch_stats, factor)
        group = self.process_group or torch.distributed.group.WORLD
        world_size = torch.distributed.get_world_size(group)
        if world_size == 1:
            return super()._normalize(x, running_mean, running_var, weight,
                                      bias, use_batch_stats, factor)
        return sync_batch_norm.apply(x, weight, bias, running_mean,
                                     running_var, self.eps, factor, group,
                                     world_size)


# (base class, kind, dynamic class); subclasses qualify only if they keep
# the base's forward (a forward of their own may compute something else).
_SLICEABLE = (
    (nn.Conv2d, 'conv', DynamicConv2d),
    (nn.Linear, 'linear', DynamicLinear),
    (nn.SyncBatchNorm, 'bn', DynamicSyncBatchNorm),
    (nn.BatchNorm2d, 'bn', DynamicBatchNorm2d),
    (nn.BatchNorm1d, 'bn', DynamicBatchNorm1d),
)
# Subclasses of those with a forward of their own that a dynamic class
# reproduces, by the import path of the class: (path, kind, dynamic class).
# The dynamic layer exports to that class again (its ``static_class``).
_OWN_FORWARD = (
    ('mmcv.cnn.bricks.conv2d_adaptive_padding.Conv2dAdaptivePadding', 'conv',
     DynamicConv2dAdaptivePadding),
    ('timm.layers.norm_act.BatchNormAct2d', 'bn', DynamicBatchNormAct2d),
)


def _sliceable_entry(module: nn.Module) -> tuple | None:
    for cls in type(module).__mro__:
        path = f'{cls.__module__}.{cls.__qualname__}'
        for own_path, kind, dynamic in _OWN_FORWARD:
            if path == own_path:
                return (cls, kind, dynamic) \
                    if type(module).forward is cls.forward else None
    for base, kind, dynamic in _SLICEABLE:
        if isinstance(module, base):
            return (base, kind, dynamic) \
                if type(module).forward is base.forward else None
    return None


def sliceable_kind(module: nn.Module) -> str | None:
    """'conv', 'linear' or 'bn' for layers that can be made dynamic."""
    entry = _sliceable_entry(module)
    return None if entry is None else entry[1]


def make_dynamic(module: nn.Module, out_width: ChannelWidth | None,
                 depthwise: bool = False,
                 input_parts: ChannelParts | None = None,
                 output_parts: ChannelParts | None = None,
                 input_width: ChannelWidth | None = None,
                 check_input: bool = False) -> nn.Module:
    """Converts a Conv2d, Linear or BatchNorm into its dynamic version.

    Subclasses are converted only when they keep the base class's forward,
    or are one of the layers with a forward of their own listed in the
    module docstring (mmcv's Conv2dAdaptivePadding, timm's BatchNormAct2d).

    Args:
        module: the layer, converted in place.
        out_width: the output group's width; None keeps the output at full
            width (batch norms and depthwise convs follow their input).
        depthwise: whether a conv is depthwise.
        input_parts: the parts of the concatenation it reads, if it does.
        output_parts: the parts its output is written in, if it has
            several (a conv or linear layer; ``out_width`` is None then).
        input_width: its input group's width; with neither it nor
            ``input_parts`` the input is fixed at full width.
        check_input: every forward checks the input's channels against
            those (the mutator's layers); otherwise the input width is
            whatever the input has.

    Returns:
        The same object, now of the dynamic class.
    """
    entry = _sliceable_entry(module)
    if entry is None:
        raise TypeError(f'no dynamic version of {type(module).__name__}; '
                        'only Conv2d, Linear and BatchNorm1d/2d/'
                        'SyncBatchNorm (or subclasses keeping their forward), '
                        'Conv2dAdaptivePadding and BatchNormAct2d are '
                        'sliceable')
    base, kind, dynamic = entry
    if kind == 'conv':
        dynamic.convert(module, out_width, depthwise)
    elif kind == 'linear':
        dynamic.convert(module, out_width)
    else:
        module.__class__ = dynamic
    if any(dynamic is own for _, _, own in _OWN_FORWARD):
        module.static_class = base
    if input_parts is not None:
        module.input_parts = input_parts
    if output_parts is not None:
        module.output_parts = output_parts
    module.input_width = input_width
    module.checks_input = check_input
    return module


def is_dynamic(module: nn.Module) -> bool:
    """Whether ``module`` is one of the dynamic layers."""
    return isinstance(module, (DynamicConv2d, DynamicLinear,
                               _DynamicBatchNorm, SwitchableBatchNorm))


@dataclass
class SubnetSwitch:
    """Which subnet's private layers are active, shared by those layers."""
    index: int = 0


class SwitchableBatchNorm(nn.Module):
    """One private batch norm per subnet (switchable BN of slimmable nets).

    Args:
        bns: each subnet's batch norm, e.g. a dynamic batch norm's
            ``to_static`` at that subnet's widths.
        switch: the shared active-subnet index.
    """

    def __init__(self, bns: list[nn.Module], switch: SubnetSwitch) -> None:
        super().__init__()
        self.bns = nn.ModuleList(bns)
        self.switch = switch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bns[self.switch.index](x)

    def to_static(self, num_features: int) -> nn.Module:
        """A copy of the active subnet's batch norm."""
        active = self.bns[self.switch.index]
        if active.num_features != num_features:
            raise ValueError(
                f'active switchable BN has {active.num_features} channels, '
                f'the subnet needs {num_features}')
        return copy.deepcopy(active)
