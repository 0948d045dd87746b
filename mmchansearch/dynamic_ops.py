"""Dynamic (channel-sliceable) layers.

A dynamic layer keeps the max-width weights of the layer it replaces and, on
each forward, uses the first ``k`` channels of them (sequential slicing, as in
slimmable networks). Only the *output* width is looked up, in the
:class:`ChannelWidth` its group shares; the input width is read from the
input tensor, so a layer never disagrees with the layer feeding it.

Layers are converted in place by swapping their class, so parameters,
buffers, state_dict keys and optimizer references stay exactly as they were:
a supernet checkpoint is an ordinary checkpoint of the original model.
"""
from __future__ import annotations

import copy
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


class DynamicConv2d(nn.Conv2d):
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
        return self.out_channels if self.out_width is None \
            else self.out_width.current

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cin = x.shape[1]
        cout = self._out_channels_now(cin)
        if cin == self.in_channels and cout == self.out_channels:
            return super().forward(x)
        weight = self.weight[:cout] if self.depthwise \
            else self.weight[:cout, :cin // self.groups]
        bias = None if self.bias is None else self.bias[:cout]
        groups = cin if self.depthwise else self.groups
        if self.padding_mode != 'zeros':
            x = F.pad(x, self._reversed_padding_repeated_twice,
                      mode=self.padding_mode)
            return F.conv2d(x, weight, bias, self.stride, 0, self.dilation,
                            groups)
        return F.conv2d(x, weight, bias, self.stride, self.padding,
                        self.dilation, groups)

    def to_static(self, in_channels: int) -> nn.Conv2d:
        """A plain Conv2d holding copies of the weights in use."""
        cout = self._out_channels_now(in_channels)
        groups = in_channels if self.depthwise else self.groups
        static = nn.Conv2d(in_channels, cout, self.kernel_size, self.stride,
                           self.padding, self.dilation, groups,
                           self.bias is not None, self.padding_mode,
                           device=self.weight.device, dtype=self.weight.dtype)
        weight = self.weight[:cout] if self.depthwise \
            else self.weight[:cout, :in_channels // groups]
        static.weight = nn.Parameter(_clone(weight))
        if self.bias is not None:
            static.bias = nn.Parameter(_clone(self.bias[:cout]))
        return static


class DynamicLinear(nn.Linear):
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
        return self.out_features if self.out_width is None \
            else self.out_width.current

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cin, cout = x.shape[-1], self._out_features_now()
        if cin == self.in_features and cout == self.out_features:
            return super().forward(x)
        bias = None if self.bias is None else self.bias[:cout]
        return F.linear(x, self.weight[:cout, :cin], bias)

    def to_static(self, in_features: int) -> nn.Linear:
        """A plain Linear holding copies of the weights in use."""
        cout = self._out_features_now()
        static = nn.Linear(in_features, cout, self.bias is not None,
                           device=self.weight.device, dtype=self.weight.dtype)
        static.weight = nn.Parameter(_clone(self.weight[:cout, :in_features]))
        if self.bias is not None:
            static.bias = nn.Parameter(_clone(self.bias[:cout]))
        return static


class _DynamicBatchNorm:
    """Batch norm over the first channels of its statistics and affine."""
    static_class: type

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
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
        running_mean = self.running_mean[:channels] \
            if use_running and self.running_mean is not None else None
        running_var = self.running_var[:channels] \
            if use_running and self.running_var is not None else None
        weight = None if self.weight is None else self.weight[:channels]
        bias = None if self.bias is None else self.bias[:channels]
        return self._normalize(x, running_mean, running_var, weight, bias,
                               use_batch_stats, factor)

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
                    setattr(static, name,
                            nn.Parameter(_clone(source[:num_features])))
            for name in ('running_mean', 'running_var'):
                source = getattr(self, name)
                if source is not None:
                    getattr(static, name).copy_(source[:num_features])
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


def _sliceable_entry(module: nn.Module) -> tuple | None:
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
                 depthwise: bool = False) -> nn.Module:
    """Converts a Conv2d, Linear or BatchNorm into its dynamic version.

    Subclasses are converted only when they keep the base class's forward.

    Args:
        module: the layer, converted in place.
        out_width: the output group's width; None keeps the output at full
            width (batch norms and depthwise convs follow their input).
        depthwise: whether a conv is depthwise.

    Returns:
        The same object, now of the dynamic class.
    """
    entry = _sliceable_entry(module)
    if entry is None:
        raise TypeError(f'no dynamic version of {type(module).__name__}; '
                        'only Conv2d, Linear and BatchNorm1d/2d/'
                        'SyncBatchNorm (or subclasses keeping their forward) '
                        'are sliceable')
    _, kind, dynamic = entry
    if kind == 'conv':
        return dynamic.convert(module, out_width, depthwise)
    if kind == 'linear':
        return dynamic.convert(module, out_width)
    module.__class__ = dynamic
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
        source: the batch norm to copy (its first channels).
        widths: the channel count of each subnet at this layer.
        switch: the shared active-subnet index.
    """

    def __init__(self, source: nn.Module, widths: list[int],
                 switch: SubnetSwitch) -> None:
        super().__init__()
        if not isinstance(source, _DynamicBatchNorm):
            source = make_dynamic(source, None)
        self.bns = nn.ModuleList(source.to_static(w) for w in widths)
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
