"""FBNetV2's DMaskingNAS: differentiable channel search by weighted masks.

The max-width network runs once; every searchable group's channels are
multiplied, where they are read, by m_g = sum_i w_i L_i, where L_i keeps the
first C_i channels and w = Gumbel-softmax(alpha_g, tau) over the group's
candidate widths. The expected widths sum_i w_i C_i make the analytic
FLOPs/params differentiable in alpha, so one loss trains the architecture:
CE + lambda * cost term, or FBNet's CE * a * log(cost)^b.

With ``resolutions`` the input resolution is searched the same way: every
spatial layer runs once per candidate resolution on its sub-sampled,
interleaved-zero-padded feature map (:mod:`mmchansearch.resolution`), the
outputs weighted by a Gumbel-softmax over the candidates, and the FLOPs use
every layer's expected number of output positions.

On an :class:`~mmchansearch.models.backbones.FBNetV2SearchSpace` backbone
(FBNetV2's space) the channel candidates of every group come from the
space (stem, stage and last widths, block expansions) and every block's
depthwise kernel is searched too: the block outputs the Gumbel-weighted sum
of its kernel candidates (FBNet's block choice), and the cost weighs each
candidate's layers by the same weights, so the effective-shape cost is the
expectation over kernels and widths (exact for one-hot choices). The
derived channel_cfg then has a ``blocks:`` section (layer -> kernel).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...channel_cfg import ChannelConfig
from ...channel_masks import GroupMasks
from ...errors import ConfigError
from ...mutator import ChannelMutator
from ...registry import MODELS
from ...resolution import ResolutionMixer
from ..backbones.fbnet import ChoiceLayer
from ..backbones.fbnetv2 import FBNetV2SearchSpace
from .base import ChannelSupernet
from .differentiable import DifferentiableSearch

COST_NETWORKS = ('expected', 'sampled', 'derived')


@MODELS.register_module()
class DMaskingNAS(DifferentiableSearch, ChannelSupernet):
    """Differentiable channel search over one shared max-width network.

    Args:
        architecture: the classifier config or instance.
        mutator: the :class:`ChannelMutator` config or instance; its
            candidates (``width_ratios``, ``divisor``) are the options of
            every group unless ``candidates`` names them.
        candidates: group -> explicit candidate widths (others: the
            mutator's; in an ``FBNetV2SearchSpace`` the space's).
        cost_metric: 'flops', 'params' or 'latency' (ms, from the
            mutator's ``latency_table``).
        loss_form: 'additive' (CE + cost_weight * cost term) or
            'multiplicative' (CE * alpha * log(cost in M or ms)^beta,
            FBNet).
        cost_weight: lambda of the additive form.
        target: budget of ``cost_metric``. The additive cost term is then
            |cost / target - 1| (pulled to the budget from both sides);
            without it, cost / cost of the widest network.
        alpha: the multiplicative form's factor.
        beta: the multiplicative form's exponent.
        tau: initial Gumbel-softmax temperature (the train loop anneals it).
        cost_network: which widths the cost is computed on. 'expected'
            (FBNetV2's, as in the paper): sum_i w_i C_i of the
            Gumbel-softmax weights, the effective shape; toolbox variants:
            'sampled': the network the Gumbel noise draws (one candidate
            per group, the argmax of the perturbed logits);
            'derived': the argmax of alpha, the network the search will
            write. The last two are one-hot in the forward with
            straight-through gradients (of the Gumbel-softmax weights,
            resp. of softmax(alpha)), so discrete networks, not only the
            expectation, are pushed to the budget. The masks stay soft.
            'derived' (the default, a variant) is the one measured to land
            on the budget (benchmarks/RESULTS.md, section 10).
        resolutions: candidate input sizes (square, each <= the mutator's
            input size) to search as well; None searches channels only.
        data_preprocessor: defaults to the architecture's.
        init_cfg: mmengine init config.
        memory_format: see :class:`ChannelSupernet`.
    """

    def __init__(self,
                 architecture: dict | nn.Module,
                 mutator: dict | ChannelMutator | None = None,
                 candidates: Mapping[str, Sequence[int]] | None = None,
                 cost_metric: str = 'flops',
                 loss_form: str = 'additive',
                 cost_weight: float = 1.0,
                 target: float | None = None,
                 alpha: float = 0.2,
                 beta: float = 0.6,
                 tau: float = 5.0,
                 cost_network: str = 'derived',
                 resolutions: Sequence[int] | None = None,
                 data_preprocessor: dict | nn.Module | None = None,
                 init_cfg: dict | None = None,
                 memory_format: str = 'channels_last') -> None:
        super().__init__(architecture, mutator, data_preprocessor, init_cfg,
                         memory_format=memory_format)
        if cost_network not in COST_NETWORKS:
            raise ConfigError(f'cost_network {cost_network!r} is unknown; '
                              f'use one of {COST_NETWORKS}.')
        if cost_metric == 'latency' and 'latency' not in \
                self.mutator.estimator.metrics:
            raise ConfigError(
                "cost_metric 'latency' needs the mutator's latency_table "
                '(`python tools/build_latency_lut.py CONFIG --device cpu -o '
                'lut.json`, then mutator=dict(..., latency_table=...)).')
        if cost_metric == 'latency' and resolutions is not None:
            raise ConfigError(
                'a latency table holds the ops at one input size: search '
                "resolutions with cost_metric 'flops' or 'params'.")
        self.tau, self.cost_network = tau, cost_network
        space = getattr(self.architecture, 'backbone', None)
        self.space = space if isinstance(space, FBNetV2SearchSpace) \
            else None
        self.channel_options = self._options(candidates or {})
        self.searched_groups = [g for g, c in self.channel_options.items()
                                if len(c) > 1]
        self.block_layers: dict[str, ChoiceLayer] = {} \
            if self.space is None else {
                f'backbone.{name}': layer
                for name, layer in self.space.choice_layers().items()}
        # every decision with its candidates: channel groups (widths), then
        # block layers (kernel names), in the order of arch_params
        self.options = {**self.channel_options, **{
            name: layer.names for name, layer in self.block_layers.items()}}
        self.searched = [*self.searched_groups, *self.block_layers]
        self.arch_params = nn.ParameterList(
            nn.Parameter(torch.zeros(len(self.options[g])))
            for g in self.searched)
        paths = {id(m): n for n, m in self.architecture.named_modules()}
        self._block_members = {name: self._layers_of(
            name, paths[id(layer)]) for name, layer in
            self.block_layers.items()}
        for group in self.searched_groups:
            keep = torch.zeros(len(self.options[group]),
                               self.mutator.max_widths[group])
            for i, width in enumerate(self.options[group]):
                keep[i, :width] = 1
            self.register_buffer(_buffer_name(group), keep, persistent=False)
        self.masks = GroupMasks(self.architecture, self.mutator.analysis,
                                self.searched_groups)
        self.resolution_mixer = None if resolutions is None else \
            ResolutionMixer(self.architecture, self.mutator.input_shape,
                            resolutions)
        if self.resolution_mixer is not None:
            self.arch_params.append(nn.Parameter(torch.zeros(len(
                self.resolution_mixer.resolutions))))
        widest = self.usage(self.mutator.max_widths, None,
                            self._extreme_blocks(max, cost_metric))[
            cost_metric]
        smallest = self.usage(
            {g: c[0] for g, c in self.channel_options.items()},
            self.resolutions[0] if resolutions else None,
            self._extreme_blocks(min, cost_metric))[cost_metric]
        self.init_cost(cost_metric, loss_form, cost_weight, target, alpha,
                       beta, widest, smallest)

    def _layers_of(self, block_layer: str, path: str) -> list[list[str]]:
        """Per candidate of a block layer (its module at ``path``), the
        analyzed layers inside it (what its weight multiplies in the
        cost)."""
        layers = self.mutator.analysis.layers
        return [[name for name in layers if name.startswith(
                 f'{path}.candidates.{candidate}.')]
                for candidate in self.options[block_layer]]

    def _extreme_blocks(self, pick: Callable, metric: str
                        ) -> dict[str, str]:
        """Per block layer, the candidate of the ``pick`` (min/max)
        ``metric``: the blocks of the cheapest and the widest networks."""
        blocks = {}
        for name in self.block_layers:
            costs = [self.usage(self.mutator.max_widths, None,
                                {name: c})[metric]
                     for c in self.options[name]]
            blocks[name] = self.options[name][costs.index(pick(costs))]
        return blocks

    def _options(self, candidates: Mapping[str, Sequence[int]]
                 ) -> dict[str, list[int]]:
        maxima = self.mutator.max_widths
        unknown = sorted(set(candidates) - set(maxima))
        if unknown:
            raise ConfigError(f'candidates: unknown group(s) {unknown}; '
                              f'valid groups are {list(maxima)}.')
        options = {}
        for group in maxima:
            widths = candidates.get(group)
            if widths is None:
                options[group] = self.mutator.candidates(group)
                continue
            widths = sorted(set(widths))
            if not widths or not all(isinstance(w, int) and 1 <= w <=
                                     maxima[group] for w in widths):
                raise ConfigError(
                    f'candidates of {group}: {list(widths)} must be a '
                    f'non-empty list of widths in [1, {maxima[group]}].')
            divisor = self.mutator.divisors[group]
            if any(w % divisor for w in widths):
                raise ConfigError(f'candidates of {group}: widths must be '
                                  f'multiples of {divisor} (grouped conv).')
            options[group] = widths
        return options

    @property
    def resolutions(self) -> list[int]:
        """Candidate input sizes, ascending (empty: not searched)."""
        return [] if self.resolution_mixer is None else \
            self.resolution_mixer.resolutions

    def usage(self, choices: Mapping[str, int],
              resolution: int | None = None,
              blocks: Mapping[str, str] | None = None) -> dict[str, float]:
        """FLOPs and params (and latency) of ``choices`` at a candidate
        ``resolution`` (None: the mutator's input size), with one
        candidate of each block layer named in ``blocks`` (default: the
        derived ones)."""
        positions = None if resolution is None else \
            self.resolution_mixer.positions[
                self.resolutions.index(resolution)]
        if blocks is None:
            blocks = self.derived_blocks()
        return {k: float(v) for k, v in self.mutator.estimator.soft_estimate(
            choices, positions, self.block_weights(blocks)).items()}

    def block_weights(self, blocks: Mapping) -> dict | None:
        """Layer name -> weight in the cost, from per block layer either a
        candidate name (one-hot) or a weight vector over its candidates;
        a block layer not named counts all its candidates (the supernet as
        it is). None when there are no block layers."""
        if not self.block_layers:
            return None
        weights = {}
        for name, members in self._block_members.items():
            chosen = blocks.get(name)
            for i, layers in enumerate(members):
                if isinstance(chosen, str) or chosen is None:
                    weight = float(chosen is None or
                                   self.options[name][i] == chosen)
                else:
                    weight = chosen[i]
                weights.update(dict.fromkeys(layers, weight))
        return weights

    # ------------------------------------------------------- distributions
    def resolution_probabilities(self) -> list[float]:
        """softmax(alpha) over the candidate resolutions (empty: none)."""
        if self.resolution_mixer is None:
            return []
        return F.softmax(self.arch_params[-1].detach(), -1).tolist()

    def derived_resolution(self) -> int | None:
        """The most probable resolution (None: not searched)."""
        if self.resolution_mixer is None:
            return None
        return self.resolutions[int(self.arch_params[-1].argmax())]

    def derived_channel_cfg(self, model_name: str, **extra
                            ) -> ChannelConfig:
        """The derived network as a channel_cfg: argmax widths, the argmax
        resolution, FLOPs and params at that resolution in ``meta``."""
        choices, resolution = self.derived_choices(), \
            self.derived_resolution()
        cfg = self.mutator.channel_config(
            choices, model_name,
            'DMaskingNAS, argmax of the learned distributions', **extra)
        if resolution is not None:
            cfg.resolution = resolution
            channels = self.mutator.input_shape[0]
            cfg.meta.update(input_shape=[channels, resolution, resolution],
                            **self.usage(choices, resolution))
        if self.space is not None:
            cfg.blocks = {f'backbone.{name}': options[0] for name, options
                          in self.space.kernel_options().items()}
            cfg.blocks.update(self.derived_blocks())
            usage = self.usage(choices, resolution)
            cfg.meta.update(flops=usage['flops'], params=usage['params'])
        return cfg

    def derived_blocks(self) -> dict[str, str]:
        """The most probable candidate of every searched block layer."""
        alphas = self.arch_params[len(self.searched_groups):]
        return {name: self.options[name][int(alpha.argmax())]
                for name, alpha in zip(self.block_layers, alphas)}

    def derived_choices(self) -> dict[str, int]:
        """The most probable candidate of every group."""
        choices = {g: c[-1] for g, c in self.channel_options.items()}
        for group, alpha in zip(self.searched_groups, self.arch_params):
            choices[group] = self.options[group][int(alpha.argmax())]
        return choices

    def sample_masks(self) -> dict:
        """Draws Gumbel-softmax weights and sets the masks.

        Returns:
            The width of every group the cost is computed on (tensors for
            the searched ones), sum_i w_i C_i for the weights of
            :meth:`cost_weights`.
        """
        if self.mutator.current_choices() != self.mutator.max_widths:
            self.mutator.set_choices(self.mutator.max_widths)  # after eval
        widths: dict = {g: c[-1] for g, c in self.channel_options.items()}
        for group, alpha in zip(self.searched_groups, self.arch_params):
            weights = F.gumbel_softmax(alpha, tau=self.tau)
            keep = getattr(self, _buffer_name(group))
            self.masks.masks[group] = weights @ keep
            widths[group] = self.cost_weights(alpha, weights) @ keep.sum(1)
        return widths

    def sample_blocks(self) -> dict[str, torch.Tensor]:
        """Draws Gumbel-softmax weights over every block layer's
        candidates and sets them on the layers.

        Returns:
            Block layer -> the candidate weights the cost is computed on
            (:meth:`cost_weights`).
        """
        alphas = self.arch_params[len(self.searched_groups):]
        weights = {}
        for (name, layer), alpha in zip(self.block_layers.items(), alphas):
            layer.weights = F.gumbel_softmax(alpha, tau=self.tau)
            weights[name] = self.cost_weights(alpha, layer.weights)
        return weights

    def sample_resolution(self) -> dict | None:
        """Draws Gumbel-softmax weights over the candidate resolutions and
        sets them on the mixer.

        Returns:
            Layer name -> output positions the cost is computed at: the
            weighted sum over candidates for the weights of
            :meth:`cost_weights`, so exact for a one-hot choice; None when
            the resolution is not searched.
        """
        if self.resolution_mixer is None:
            return None
        alpha = self.arch_params[-1]
        weights = F.gumbel_softmax(alpha, tau=self.tau)
        self.resolution_mixer.weights = weights
        return self.expected_positions(self.cost_weights(alpha, weights))

    def cost_weights(self, alpha: torch.Tensor, weights: torch.Tensor
                     ) -> torch.Tensor:
        """The candidate weights the cost sees (see ``cost_network``),
        from a choice's alpha and its Gumbel-softmax weights."""
        if self.cost_network == 'sampled':
            return straight_through(weights)
        if self.cost_network == 'derived':
            return straight_through(F.softmax(alpha, -1))
        return weights

    def expected_positions(self, weights: torch.Tensor) -> dict:
        """Layer name -> sum_i weights_i * output positions at the i-th
        candidate resolution (fixed layers included: their FLOPs scale
        with the resolution too)."""
        per_candidate = self.resolution_mixer.positions
        analysis = self.mutator.analysis
        return {name: sum(w * p[name] for w, p in zip(weights,
                                                      per_candidate))
                for name in [*analysis.layers, *analysis.fixed_layers]}

    def cost(self, widths: Mapping, positions: Mapping | None = None,
             blocks: Mapping | None = None) -> torch.Tensor:
        """The differentiable ``cost_metric`` of expected widths (and of
        expected output positions, when the resolution is searched, and
        of block layer -> candidate weights or name, in a block space)."""
        return self.mutator.estimator.soft_estimate(
            widths, positions, self.block_weights(blocks or {}))[
            self.cost_metric]

    def sample_architecture(self) -> torch.Tensor:
        """Samples masks (kernels, resolution); the cost they imply."""
        widths = self.sample_masks()
        blocks = self.sample_blocks()
        return self.cost(widths, self.sample_resolution(), blocks)

    def clear_architecture(self) -> None:
        self.masks.clear()
        for layer in self.block_layers.values():
            layer.weights = layer.active = None
        if self.resolution_mixer is not None:
            self.resolution_mixer.weights = None

    def eval_subnets(self) -> dict[str, Callable[[], None]]:
        """Validation reports the derived network (sliced, no masks)."""
        def derived() -> None:
            self.masks.clear()
            self.mutator.set_choices(self.derived_choices())
            for name, block in self.derived_blocks().items():
                layer = self.block_layers[name]
                layer.weights, layer.active = None, block
            if self.resolution_mixer is not None:
                self.resolution_mixer.weights = \
                    self.resolution_mixer.one_hot(self.derived_resolution())
        return {'derived': derived}


def straight_through(weights: torch.Tensor) -> torch.Tensor:
    """The one-hot of ``weights``' argmax in the forward, the gradient of
    ``weights`` in the backward (straight-through estimator)."""
    hard = F.one_hot(weights.argmax(-1), weights.shape[-1]).to(weights)
    return hard - weights.detach() + weights


def _buffer_name(group: str) -> str:
    return 'keep_' + group.replace('.', '_')
