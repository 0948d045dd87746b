"""Analytic FLOPs and parameter counts for any channel choice.

FLOPs follow the papers' convention: multiply-accumulates of convolutions and
linear layers (MobileNetV2 1.0x at 224x224 = 300M), the same as fvcore's
per-operator conv + linear counts. Everything comes from one trace
(:class:`~mmchansearch.analysis.ChannelAnalysis`): per layer, a coefficient
times the widths of its input and output groups, so a query is a short loop
over small integers. Conv and linear computations outside the sliceable
layers (the analysis' fixed layers: a conv subclass with its own forward, a
Conv1d, an ``F.linear`` in a custom forward) keep their channels, so their
cost is a constant; a model whose cost the trace could not count is refused
(:class:`~mmchansearch.errors.ConfigError`), never estimated low. With a
latency model (:mod:`mmchansearch.channel_latency`, from a lookup table
measured on the user's device) the estimate has 'latency' (ms) too, so
every search can bound it like FLOPs.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from .analysis import ChannelAnalysis, LayerInfo, count_conv_linear
from .errors import ConfigError
from .layer_kinds import LAYER_KINDS, CostCoefficients

METRICS = ('flops', 'params')


@dataclass(frozen=True)
class _LayerCost:
    """One analyzed layer's cost as a function of its widths."""
    layer: LayerInfo
    coefficients: CostCoefficients  # its kind's (layer_kinds.py)
    positions: int  # output positions its FLOPs were counted at

    @property
    def name(self) -> str:
        return self.layer.name

    def flops_and_params(self, widths: Mapping) -> tuple[Any, Any]:
        """FLOPs (at the traced positions) and params at these widths (a
        batch norm's and a depthwise conv's outputs are its inputs)."""
        c = self.coefficients
        cin = self.layer.input_width(widths)
        cin = cin // c.groups if isinstance(cin, int) else cin / c.groups
        cout = self.layer.output_width(widths)
        return ((c.flops_per_pair * cin + c.flops_per_out) * cout,
                (c.params_per_pair * cin + c.params_per_out) * cout)


class ResourceEstimator:
    """Estimates FLOPs and params of a model for any group widths.

    Args:
        analysis: the channel analysis of the model.
        model: the analyzed model (its layers' kernel sizes and biases are
            read once; parameters outside analyzed layers count as a
            constant, as do the FLOPs of the analysis' fixed layers).
        latency: an object whose ``latency(widths)`` gives milliseconds
            (:class:`~mmchansearch.channel_latency.ChannelLatencyModel`); adds
            the 'latency' metric.
    """

    def __init__(self, analysis: ChannelAnalysis, model: nn.Module,
                 latency: Any = None) -> None:
        self.analysis = analysis
        self.latency = latency
        self._costs = [_layer_cost(info, model.get_submodule(name))
                       for name, info in analysis.layers.items()]
        layer_params = sum(
            p.numel() for name in analysis.layers
            for p in model.get_submodule(name).parameters(recurse=False))
        self._constant_params = sum(
            p.numel() for p in model.parameters()) - layer_params
        self._fixed = [layer for layer in analysis.fixed_layers.values()
                       if layer.macs]

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics :meth:`estimate` returns."""
        return METRICS + (('latency', ) if self.latency else ())

    def estimate(self, widths: Mapping[str, int]) -> dict[str, float]:
        """FLOPs, params (and latency) for group name -> width (missing
        groups: max)."""
        return {k: float(v) for k, v in self.soft_estimate(widths).items()}

    def soft_estimate(self, widths: Mapping,
                      positions: Mapping | None = None,
                      layer_weights: Mapping | None = None) -> dict:
        """:meth:`estimate` for real-valued widths, e.g. tensors of
        expected widths (DMaskingNAS): differentiable in them.

        Args:
            widths: group name -> width (missing groups: max).
            positions: layer name -> output positions per channel (H*W of
                a conv) replacing the traced ones, e.g. at another input
                resolution or their expectation over candidate
                resolutions; FLOPs are linear in them (params are not
                affected). When given, it must name every fixed layer
                (:attr:`ChannelAnalysis.fixed_layers`).
            layer_weights: layer name -> factor of its FLOPs, params (and
                latency), e.g. the probability of the candidate block it
                belongs to: the expected cost of a block choice
                (FBNetV2's kernels). Layers not named count once.

        Raises:
            ConfigError: the trace could not count the model's cost, or
                ``positions`` lacks a fixed layer.
        """
        positions = positions or {}
        flops = self._fixed_flops(positions)
        params = self._constant_params
        for cost in self._costs:
            flops_at_traced, layer_params = cost.flops_and_params(widths)
            if cost.name in positions:
                flops_at_traced = flops_at_traced * (
                    positions[cost.name] / cost.positions)
            if layer_weights and cost.name in layer_weights:
                weight = layer_weights[cost.name]
                flops_at_traced = flops_at_traced * weight
                layer_params = layer_params * weight
            flops = flops + flops_at_traced
            params = params + layer_params
        result = {'flops': flops, 'params': params}
        if self.latency:
            result['latency'] = self.latency.latency(widths) \
                if layer_weights is None \
                else self.latency.latency(widths, layer_weights)
        return result

    def layer_flops(self, widths: Mapping[str, int]) -> dict[str, float]:
        """FLOPs of every analyzed layer (batch norms: 0) and of every
        fixed layer, by module name; they sum to :meth:`flops`."""
        self._check_counted()
        result = {layer.name: float(layer.macs) for layer in self._fixed}
        for cost in self._costs:
            result[cost.name] = float(cost.flops_and_params(widths)[0])
        return result

    def _check_counted(self) -> None:
        """Refuses a model whose cost the trace could not count."""
        if self.analysis.uncounted:
            raise ConfigError(
                'cannot count the FLOPs of this model exactly: '
                f'{", ".join(self.analysis.uncounted)} ran a conv or matrix '
                'product inside a torch function the trace cannot see into; '
                'write it with F.conv*/F.linear/torch.matmul (or nn layers) '
                'to have it counted.')

    def _fixed_flops(self, positions: Mapping) -> float:
        """FLOPs of the fixed layers, at ``positions`` when given."""
        self._check_counted()
        if not positions:
            return sum(layer.macs for layer in self._fixed)
        missing = [layer.name for layer in self._fixed
                   if layer.name not in positions]
        if missing:
            raise ConfigError(
                f'positions: no output positions for the fixed layer(s) '
                f'{missing}; their FLOPs at another input size are unknown. '
                'Give positions for every layer of analysis.layers and '
                'analysis.fixed_layers.')
        return sum(layer.macs * (positions[layer.name]
                                 / layer.output_positions)
                   for layer in self._fixed)

    def flops(self, widths: Mapping[str, int]) -> float:
        """FLOPs (multiply-accumulates of conv + linear layers)."""
        return self.estimate(widths)['flops']

    def params(self, widths: Mapping[str, int]) -> float:
        """Number of parameters."""
        return self.estimate(widths)['params']


def _layer_cost(info: LayerInfo, module: nn.Module) -> _LayerCost:
    positions = max(info.output_positions, 1)
    return _LayerCost(info, LAYER_KINDS[info.kind].cost(module, positions),
                      positions)


def traced_macs(model: nn.Module, run: Callable[[], Any]) -> dict[str, int]:
    """Multiply-accumulates of every conv and linear computation during
    ``run()`` (one sample's forward), by the module running it.

    The convention of :class:`ResourceEstimator` (fvcore's conv + linear
    count) for networks without channel groups, e.g. each candidate block
    of a block-choice space; computations outside ``nn.Conv2d`` /
    ``nn.Linear`` modules count too, and one the counter cannot see (e.g.
    ``nn.MultiheadAttention``) is refused.
    """
    with count_conv_linear(model) as counter:
        run()
    if counter.uncounted:
        raise ConfigError(
            f'cannot count the FLOPs of {", ".join(counter.uncounted)}: a '
            'torch function computes a conv or matrix product inside it; '
            'such a model is refused rather than counted low.')
    return {name: cost.macs for name, cost in counter.costs.items()
            if cost.macs}
