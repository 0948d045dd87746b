"""FBNet's DNAS: differentiable block choice with a latency lookup table.

Every searchable layer of an :class:`FBNetSearchSpace` outputs
``sum_i m_i * block_i(x)`` with m = Gumbel-softmax(theta_layer, tau); the
latency of the sampled network, ``LAT = fixed + sum_l sum_i m_li *
LAT(block_li)``, comes from a table measured on the target device, so the
search loss CE * alpha * log(LAT)^beta (or CE + lambda * cost) is
differentiable in theta. FLOPs and params can be the cost instead.
"""
from __future__ import annotations

import copy
import random
from collections.abc import Callable, Sequence

import torch
from mmengine.model import BaseModel
from torch import nn

from ...channel_cfg import ChannelConfig
from ...errors import ConfigError
from ...estimators import traced_macs
from ...latency_table import LatencyTable, OpSpec, copy_op, record_input_shapes
from ...registry import MODELS
from ..backbones.fbnet import ChoiceLayer, FBNetSearchSpace
from .base import build_architecture
from .differentiable import DifferentiableSearch


class _Head(nn.Module):
    """A classifier's neck and head as one op (for the latency table)."""

    def __init__(self, neck: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.neck, self.head = neck, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head((self.neck(x), ))


@MODELS.register_module()
class DNAS(DifferentiableSearch, BaseModel):
    """FBNet's layer-wise block search over a stochastic supernet.

    Args:
        architecture: an mmpretrain ``ImageClassifier`` config or instance
            whose backbone is an :class:`FBNetSearchSpace` supernet.
        input_shape: (C, H, W) of one sample: the shapes the costs and the
            latency table's ops are computed at.
        latency_table: the table of this space measured on the target
            device (``tools/build_latency_lut.py``); needed for the
            'latency' cost and for the latencies reported.
        latency_device: 'cpu' or 'cuda', the device the table is for.
        cost_metric: 'latency' (ms), 'flops' or 'params'.
        loss_form, cost_weight, target, alpha, beta: see
            :meth:`DifferentiableSearch.init_cost`; FBNet's are
            multiplicative, alpha 0.2, beta 0.6.
        tau: initial Gumbel temperature (the train loop anneals it).
        data_preprocessor: defaults to the architecture's.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 architecture: dict | nn.Module,
                 input_shape: Sequence[int] = (3, 224, 224),
                 latency_table: str | None = None,
                 latency_device: str = 'cpu',
                 cost_metric: str = 'latency',
                 loss_form: str = 'multiplicative',
                 cost_weight: float = 1.0,
                 target: float | None = None,
                 alpha: float = 0.2,
                 beta: float = 0.6,
                 tau: float = 5.0,
                 data_preprocessor: dict | nn.Module | None = None,
                 init_cfg: dict | None = None) -> None:
        architecture, data_preprocessor = build_architecture(
            architecture, data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.architecture = architecture
        space = getattr(architecture, 'backbone', None)
        if not isinstance(space, FBNetSearchSpace):
            raise ConfigError(
                'DNAS searches an FBNetSearchSpace backbone; the '
                f'architecture has {type(space).__name__}.')
        self.input_shape = tuple(input_shape)
        self.all_layers: dict[str, ChoiceLayer] = {
            f'backbone.layers.{i}': layer
            for i, layer in enumerate(space.layers)}
        self.layers = {name: layer for name, layer in self.all_layers.items()
                       if len(layer.names) > 1}
        self.searched = list(self.layers)
        self.options = {n: layer.names for n, layer in self.layers.items()}
        self.arch_params = nn.ParameterList(
            nn.Parameter(torch.zeros(len(names)))
            for names in self.options.values())
        self.tau = tau
        self._macs: dict[str, int] = {}
        self._ops = self._trace_ops()
        self.table = LatencyTable.load(latency_table, latency_device) \
            if latency_table else None
        if cost_metric == 'latency' and self.table is None:
            raise ConfigError(
                "cost_metric 'latency' needs latency_table=PATH; build one "
                'with `python tools/build_latency_lut.py CONFIG --device cpu '
                '-o lut.json`.')
        self.costs = self._candidate_costs()
        widest, cheapest = (self.fixed_cost.get(cost_metric, 0) + sum(
            pick(c.get(cost_metric, 0) for c in self.costs[n].values())
            for n in self.searched) for pick in (max, min))
        self.init_cost(cost_metric, loss_form, cost_weight, target, alpha,
                       beta, widest, cheapest)
        for i, (name, layer) in enumerate(self.layers.items()):
            self.register_buffer(f'block_costs_{i}', torch.tensor(
                [self.costs[name][b][cost_metric] for b in layer.names]),
                persistent=False)

    # ------------------------------------------------------------ costs
    def _trace_ops(self) -> dict[str, tuple[nn.Module, tuple[int, ...]]]:
        """Every op of the space at its input shape: the fixed parts
        (stem, last conv, head) and each layer's candidates, keyed
        'stem', 'last', 'head' and '<layer>.<block>'."""
        space, arch = self.architecture.backbone, self.architecture
        watched = {'stem': space.stem, 'last': space.last, **self.all_layers}
        inputs = torch.zeros(1, *self.input_shape)
        was_training = arch.training

        def run() -> None:
            with torch.no_grad():
                arch.eval()(inputs, mode='tensor')

        shapes = record_input_shapes(watched, lambda: self._macs.update(
            traced_macs(arch, run)))
        arch.train(was_training)
        last_out = (space.out_channels, *shapes['last'][1:])
        ops = {'stem': (space.stem, shapes['stem']),
               'last': (space.last, shapes['last']),
               'head': (_Head(arch.neck or nn.Identity(), arch.head),
                        last_out)}
        for name, layer in self.all_layers.items():
            for block_name, block in layer.candidates.items():
                ops[f'{name}.{block_name}'] = (block, shapes[name])
        return ops

    def _signature(self, key: str) -> str:
        """The latency-table key of op ``key``."""
        module, shape = self._ops[key]
        size = 'x'.join(map(str, shape))
        layer, _, block = key.rpartition('.')
        if layer in self.all_layers:
            if isinstance(module, nn.Identity):
                return f'fbnet_block:skip:{size}'
            return (f'fbnet_block:{block}:{size}->'
                    f'{module.project.conv.out_channels}'
                    f':s{module.depthwise.conv.stride[0]}')
        return f'{key}:{size}:' + ' '.join(repr(module).split())

    def latency_ops(self) -> list[OpSpec]:
        """The ops a latency table of this space must hold."""
        return [OpSpec(self._signature(key), copy_op(module), shape)
                for key, (module, shape) in self._ops.items()]

    def _op_cost(self, key: str) -> dict[str, float]:
        module = self._ops[key][0]
        prefix = {'stem': 'backbone.stem', 'last': 'backbone.last',
                  'head': None}.get(key, _module_path(key))
        if prefix is None:  # everything outside the backbone
            flops = sum(v for k, v in self._macs.items()
                        if not k.startswith('backbone.'))
        else:
            flops = sum(v for k, v in self._macs.items()
                        if k.startswith(prefix + '.'))
        cost = dict(flops=float(flops), params=float(
            sum(p.numel() for p in module.parameters())))
        if self.table is not None:
            cost['latency'] = self.table[self._signature(key)]
        return cost

    def _candidate_costs(self) -> dict[str, dict[str, dict[str, float]]]:
        """Per searched layer and candidate: FLOPs, params (and latency).
        The rest (stem, last conv, head, layers with one candidate) sums
        to :attr:`fixed_cost`."""
        costs = {name: {block: self._op_cost(f'{name}.{block}')
                        for block in layer.names}
                 for name, layer in self.layers.items()}
        fixed = [self._op_cost(k) for k in ('stem', 'last', 'head')] + [
            self._op_cost(f'{name}.{layer.names[0]}')
            for name, layer in self.all_layers.items()
            if name not in self.layers]
        self.fixed_cost = {m: sum(c[m] for c in fixed) for m in fixed[0]}
        return costs

    def cost_of(self, blocks: dict[str, str]) -> dict[str, float]:
        """FLOPs, params (and LUT latency) of a derived architecture."""
        totals = dict(self.fixed_cost)
        for name, block in blocks.items():
            for metric, value in self.costs[name][block].items():
                totals[metric] += value
        return totals

    # ------------------------------------------------------ architecture
    def sample_architecture(self) -> torch.Tensor:
        """Gumbel-softmax mixing weights in every layer; their cost."""
        cost = torch.as_tensor(self.fixed_cost[self.cost_metric])
        for i, (layer, weights) in enumerate(zip(self.layers.values(),
                                                 self.gumbel_weights())):
            layer.weights = weights
            per_block = getattr(self, f'block_costs_{i}')
            cost = cost + weights @ per_block.to(weights.dtype)
        return cost

    def clear_architecture(self) -> None:
        for layer in self.layers.values():
            layer.weights = layer.active = None

    def derived_blocks(self) -> dict[str, str]:
        """The most probable block of every layer (all layers)."""
        blocks = {name: layer.names[0]
                  for name, layer in self.all_layers.items()}
        for (name, names), alpha in zip(self.options.items(),
                                        self.arch_params):
            blocks[name] = names[int(alpha.argmax())]
        return blocks

    def sample_blocks(self, rng: random.Random) -> dict[str, str]:
        """An architecture drawn from P_theta = softmax(theta)."""
        blocks = self.derived_blocks()
        for name, probs in self.probabilities().items():
            blocks[name] = rng.choices(self.options[name], probs)[0]
        return blocks

    def sample_network(self, rng: random.Random
                       ) -> tuple[nn.Module, Callable[[LatencyTable], float]]:
        """A uniformly random architecture as a static network, with its
        latency predicted by a table (for
        :func:`~mmchansearch.latency_table.calibrate` and fidelity checks)."""
        blocks = {name: rng.choice(layer.names)
                  for name, layer in self.all_layers.items()}
        keys = ['stem', 'last', 'head'] + [f'{n}.{b}'
                                           for n, b in blocks.items()]
        return self.export_static(blocks), lambda table: table.latency(
            self._signature(key) for key in keys)

    def set_blocks(self, blocks: dict[str, str]) -> None:
        """Runs ``blocks`` (one candidate per layer) until cleared."""
        for name, layer in self.layers.items():
            layer.weights, layer.active = None, blocks[name]

    def eval_subnets(self) -> dict[str, Callable[[], None]]:
        """Validation reports the derived (argmax) architecture."""
        return {'derived': lambda: self.set_blocks(self.derived_blocks())}

    def blocks_config(self, blocks: dict[str, str], model: str,
                      source: str, **extra) -> ChannelConfig:
        """``blocks`` as a channel_cfg with its costs in meta."""
        costs = self.cost_of(blocks)
        return ChannelConfig({}, dict(
            model=model, input_shape=list(self.input_shape), **costs,
            **extra, source=source), dict(blocks))

    def export_static(self, blocks: dict[str, str]) -> nn.Module:
        """The classifier with only the chosen block in each layer (the
        supernet's weights); the same modules and parameter names as
        ``FBNetSearchSpace(blocks=...)`` builds."""
        static = copy.deepcopy(self.architecture)
        for i, layer in enumerate(static.backbone.layers):
            chosen = blocks[f'backbone.layers.{i}']
            layer.candidates = nn.ModuleDict(
                {chosen: layer.candidates[chosen]})
            layer.weights = layer.active = None
        return static

    def forward(self, inputs: torch.Tensor, data_samples=None,
                mode: str = 'tensor'):
        """The architecture's forward with the current choices."""
        return self.architecture(inputs, data_samples, mode)


def _module_path(key: str) -> str:
    """``backbone.layers.3.k5_e6`` -> the block's module path."""
    layer, _, block = key.rpartition('.')
    return f'{layer}.candidates.{block}'


