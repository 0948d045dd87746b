"""Latency of any channel choice, from a table measured on the device.

A channel search changes the widths of the analyzed conv and linear layers
(:mod:`mmchansearch.analysis`): each layer runs one op per pair of candidate
input and output widths of its groups. :func:`channel_op_grids` lists those
ops per layer (:func:`channel_ops` is what ``tools/build_latency_lut.py``
measures for a channel search), and :class:`ChannelLatencyModel` prices any
choice of widths from a :class:`~mmchansearch.latency_table.LatencyTable`
of them, so every search can bound latency as it bounds FLOPs.

Everything here is built from plain data: the channel analysis, the
candidate widths of every group, the model whose layers the analysis names,
and each layer's input shape recorded at the max widths. The mutator owns
those and passes them in (:meth:`ChannelMutator.latency_model`); nothing
here changes widths or runs the model.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from .analysis import ChannelAnalysis, refuse_channel_parts
from .latency_table import LatencyTable, OpSpec, layer_op


class OpGrid(NamedTuple):
    """The ops of one layer at every pair of candidate widths.

    Attributes:
        ins: candidate input widths, ascending; a depthwise conv has one,
            its max (its input width follows its output).
        outs: candidate output widths, ascending.
        ops: ``ops[i][j]`` runs ``ins[i]`` -> ``outs[j]`` channels; a
            depthwise conv's one row runs ``outs[j]`` -> ``outs[j]``.
    """
    ins: list[int]
    outs: list[int]
    ops: list[list[OpSpec]]


def channel_op_grids(analysis: ChannelAnalysis, model: nn.Module,
                     candidates: Mapping[str, Sequence[int]],
                     input_shapes: Mapping[str, Sequence[int]]
                     ) -> dict[str, OpGrid]:
    """The op grid of every analyzed conv and linear layer that ran.

    Args:
        analysis: the channel analysis of ``model``.
        model: the analyzed model (static or with dynamic layers); each
            layer's kernel, stride, padding, groups and bias are read.
        candidates: group name -> its candidate widths, ascending; every
            group of the analysis.
        input_shapes: layer name -> one input sample's shape at the max
            widths; layers without one (not run) are left out.

    Returns:
        Layer name -> its grid, in the analysis' order.

    Raises:
        ConfigError: a layer reads a concatenation of searchable groups
            (a table of such layers is not supported yet).
    """
    refuse_channel_parts(
        analysis, 'latency tables',
        'search this model under a FLOPs or params budget')
    grids = {}
    for name, info in analysis.layers.items():
        if info.kind == 'bn' or name not in input_shapes:
            continue
        module, shape = model.get_submodule(name), input_shapes[name]
        outs = _candidates(candidates, info.out_group, info.out_channels)
        if info.kind == 'dwconv':
            grids[name] = OpGrid([outs[-1]], outs, [[layer_op(
                module, 'dwconv', c, c, shape) for c in outs]])
            continue
        ins = _candidates(candidates, info.in_group, info.in_channels)
        grids[name] = OpGrid(ins, outs, [[layer_op(module, info.kind, i, o,
                                                   shape) for o in outs]
                                         for i in ins])
    return grids


def channel_ops(analysis: ChannelAnalysis, model: nn.Module,
                candidates: Mapping[str, Sequence[int]],
                input_shapes: Mapping[str, Sequence[int]]) -> list[OpSpec]:
    """Every op a channel search over ``candidates`` runs: the ops of
    :func:`channel_op_grids` (same arguments), layer by layer."""
    return [op for grid in channel_op_grids(
        analysis, model, candidates, input_shapes).values()
        for row in grid.ops for op in row]


class ChannelLatencyModel:
    """Latency of any channel choice from a table of per-layer ops.

    Each analyzed conv and linear layer has been measured at every pair of
    candidate input and output widths of its groups; a choice's latency is
    the sum over layers. Between measured widths (and for the real-valued
    expected widths of DMaskingNAS) the layer's latency is interpolated
    bilinearly, so it is exact at candidate widths and differentiable in
    between. Batch norms, activations and additions are not in the table.

    Args:
        analysis, model, candidates, input_shapes: as
            :func:`channel_op_grids`.
        table: the measured table.

    Raises:
        LatencyTableError: the table lacks an op of the grids.
    """

    def __init__(self, analysis: ChannelAnalysis, model: nn.Module,
                 candidates: Mapping[str, Sequence[int]],
                 input_shapes: Mapping[str, Sequence[int]],
                 table: LatencyTable) -> None:
        self._layers = []
        for name, grid in channel_op_grids(analysis, model, candidates,
                                           input_shapes).items():
            entries = torch.tensor([[table[op.signature] for op in row]
                                    for row in grid.ops],
                                   dtype=torch.float64)
            self._layers.append((analysis.layers[name], grid.ins, grid.outs,
                                 entries))
        self.table = table

    def latency(self, widths: Mapping,
                layer_weights: Mapping | None = None) -> Any:
        """Milliseconds for group name -> width (missing groups: max);
        ``layer_weights`` (layer name -> factor, e.g. the probability of
        the block candidate it belongs to) weighs the layers it names."""
        total = 0.0
        weights = layer_weights or {}
        for info, ins, outs, grid in self._layers:
            cin = _width(widths, info.in_group, ins[-1])
            cout = _width(widths, info.out_group, outs[-1])
            if info.kind == 'dwconv':
                value = _interpolate(outs, grid[0], cout)
            else:
                row = [_interpolate(outs, grid[i], cout)
                       for i in range(len(ins))]
                value = _interpolate(ins, row, cin)
            if info.name in weights:
                value = value * weights[info.name]
            total = total + value
        return total


def _candidates(candidates: Mapping[str, Sequence[int]], group: str | None,
                fixed: int) -> list[int]:
    return list(candidates[group]) if group else [fixed]


def _width(widths: Mapping, group: str | None, default: int):
    return widths.get(group, default) if group else default


def _interpolate(points: Sequence[int], values: Sequence, x) -> Any:
    """Piecewise-linear interpolation of values at sorted points, clamped;
    differentiable when ``x`` is a tensor."""
    if len(points) == 1 or x <= points[0]:
        return values[0]
    for i in range(1, len(points)):
        if x <= points[i]:
            frac = (x - points[i - 1]) / (points[i] - points[i - 1])
            return values[i - 1] + frac * (values[i] - values[i - 1])
    return values[-1]
