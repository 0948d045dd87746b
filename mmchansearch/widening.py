"""Rebuilding a model's layers at other channel widths.

Search methods that may *grow* layers (Network Adjustment widens layers past
their original width) need a supernet wider than the model. The analyzed
layers are resized in place to the new group widths with freshly initialized
weights; everything else in the model is untouched, so its forward runs
unchanged at the new widths.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .analysis import ChannelAnalysis, refuse_channel_parts


def _new_parameter(like: torch.Tensor | None, *shape: int
                   ) -> nn.Parameter | None:
    if like is None:
        return None
    return nn.Parameter(torch.empty(*shape, dtype=like.dtype,
                                    device=like.device),
                        requires_grad=like.requires_grad)


def _resize_conv(conv: nn.Conv2d, cin: int, cout: int,
                 depthwise: bool) -> None:
    groups = cin if depthwise else conv.groups
    if cin % groups or cout % groups:
        raise ValueError(f'widths {cin}->{cout} are not multiples of the '
                         f'{groups} groups of a grouped conv')
    conv.in_channels, conv.out_channels, conv.groups = cin, cout, groups
    conv.weight = _new_parameter(conv.weight, cout, cin // groups,
                                 *conv.kernel_size)
    if conv.bias is not None:
        conv.bias = _new_parameter(conv.bias, cout)
    conv.reset_parameters()


def _resize_linear(linear: nn.Linear, cin: int, cout: int) -> None:
    linear.in_features, linear.out_features = cin, cout
    linear.weight = _new_parameter(linear.weight, cout, cin)
    if linear.bias is not None:
        linear.bias = _new_parameter(linear.bias, cout)
    linear.reset_parameters()


def _resize_batch_norm(bn: nn.modules.batchnorm._NormBase,
                       width: int) -> None:
    bn.num_features = width
    if bn.affine:
        bn.weight = _new_parameter(bn.weight, width)
        bn.bias = _new_parameter(bn.bias, width)
    if bn.track_running_stats:
        for name in ('running_mean', 'running_var'):
            old = getattr(bn, name)
            bn.register_buffer(name, torch.empty(
                width, dtype=old.dtype, device=old.device))
    bn.reset_parameters()


def resize_layers(model: nn.Module, analysis: ChannelAnalysis,
                  widths: Mapping[str, int]) -> None:
    """Resizes every analyzed layer of ``model`` to ``widths``, in place.

    Resized layers get new, freshly initialized weights (the layer's own
    ``reset_parameters``; a Runner applies the model's ``init_cfg`` on top
    when it initializes the model). Layers whose groups keep their width are
    left as they are.

    Args:
        model: the analyzed model.
        analysis: its channel analysis.
        widths: group name -> new width (missing groups keep theirs).
    """
    def width(group: str | None, default: int) -> int:
        return int(widths.get(group, default)) if group else default

    refuse_channel_parts(
        analysis, 'resizing layers (Network Adjustment, width_cap > 1)',
        'search this model with AutoSlim, ReXNet or DMaskingNAS (width_cap '
        '1), or keep the concatenated groups out of the widths',
        [g for g, w in widths.items()
         if w != analysis.groups[g].max_width])
    for name, info in analysis.layers.items():
        cin = width(info.in_group, info.in_channels)
        cout = width(info.out_group, info.out_channels)
        if (cin, cout) == (info.in_channels, info.out_channels):
            continue
        module = model.get_submodule(name)
        if info.kind in ('conv', 'dwconv'):
            _resize_conv(module, cin, cout, info.kind == 'dwconv')
        elif info.kind == 'linear':
            _resize_linear(module, cin, cout)
        else:
            _resize_batch_norm(module, cout)
