"""ChannelMutator: the one object search algorithms talk to.

It analyzes a model, turns its channel-carrying layers into dynamic layers,
and holds the current width of every channel group: set it to the max, the
min, a random sample, or any channel_cfg, and export the result as a
physically smaller static model.
"""
from __future__ import annotations

import copy
import math
import random
from collections.abc import Iterable, Mapping, Sequence

from mmengine.logging import MMLogger
from torch import nn

from .analysis import ChannelAnalysis, analyze_channels
from .channel_cfg import ChannelConfig, parse_channel_cfg, validate_channels
from .channel_latency import ChannelLatencyModel, channel_ops
from .dynamic_ops import ChannelParts, ChannelWidth, is_dynamic, make_dynamic
from .errors import BudgetError, ChannelConfigError, ConfigError
from .estimators import ResourceEstimator
from .latency_table import LatencyTable, OpSpec
from .layer_kinds import LAYER_KINDS
from .registry import MODELS
from .widening import resize_layers


def make_divisible(value: float, divisor: int, min_value: int = 1) -> int:
    """Rounds ``value`` to the nearest multiple of ``divisor`` (>= min)."""
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return int(rounded)


def _is_positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) \
        and value >= 1


@MODELS.register_module()
class ChannelMutator:
    """Holds the channel groups of a supernet and their current widths.

    Args:
        input_shape: (C, H, W) of one input sample, used to trace the model.
        width_ratios: candidate widths of every group as fractions of its
            max width; the default, 1/12 steps, is AutoSlim's.
        divisor: candidate widths are rounded to multiples of it (the max
            width is always a candidate).
        min_width: no candidate is narrower.
        frozen_groups: groups kept at their max width by search (still
            settable from a channel_cfg).
        width_cap: each group's max width as a multiple of the model's
            (>= 1). Above 1 the model's layers are rebuilt that much wider,
            with fresh weights, so a search can also grow them (Network
            Adjustment); :attr:`original_widths` keeps the model's widths.
        latency_table: a lookup table measured on the target device
            (``tools/build_latency_lut.py``): estimates then have
            'latency' (ms) as well as FLOPs and params.
        latency_device: 'cpu' or 'cuda', the device the table must have
            been measured on.
        strict_meta: a channel_cfg whose meta disagrees with this model
            (input shape, params, FLOPs) is an error instead of a warning.
    """

    def __init__(self,
                 input_shape: Sequence[int] = (3, 224, 224),
                 width_ratios: Sequence[float] | None = None,
                 divisor: int = 1,
                 min_width: int = 1,
                 frozen_groups: Iterable[str] = (),
                 width_cap: float = 1.0,
                 latency_table: str | None = None,
                 latency_device: str = 'cpu',
                 strict_meta: bool = False) -> None:
        if not (isinstance(input_shape, (list, tuple)) and len(input_shape)
                == 3 and all(_is_positive_int(s) for s in input_shape)):
            raise ConfigError(f'mutator input_shape must be (C, H, W) with '
                              f'positive integers, got {input_shape!r}.')
        ratios = [i / 12 for i in range(1, 13)] if width_ratios is None \
            else width_ratios
        if not (isinstance(ratios, (list, tuple)) and ratios and all(
                isinstance(r, (int, float)) and not isinstance(r, bool)
                and 0 < r <= 1 for r in ratios)):
            raise ConfigError(f'mutator width_ratios must be a non-empty list '
                              f'of numbers in (0, 1], got {ratios!r}.')
        if not (_is_positive_int(divisor) and _is_positive_int(min_width)):
            raise ConfigError('mutator divisor and min_width must be integers '
                              f'>= 1, got {divisor!r} and {min_width!r}.')
        if not (isinstance(width_cap, (int, float))
                and not isinstance(width_cap, bool) and width_cap >= 1):
            raise ConfigError(f'mutator width_cap must be a number >= 1 (a '
                              f'multiple of the model widths), got '
                              f'{width_cap!r}.')
        self.input_shape = tuple(int(s) for s in input_shape)
        self.width_ratios = sorted(set(ratios))
        self.divisor = divisor
        self.min_width = min_width
        self.frozen_groups = tuple(frozen_groups)
        self.width_cap = float(width_cap)
        self.latency_table, self.latency_device = latency_table, latency_device
        self.strict_meta = strict_meta
        self._meta_checked: set[tuple] = set()
        self.original_widths: dict[str, int] = {}
        self.explicit_candidates: dict[str, list[int]] = {}
        self.analysis: ChannelAnalysis | None = None
        self.widths: dict[str, ChannelWidth] = {}
        self.layer_input_shapes: dict[str, tuple[int, ...]] = {}
        self.estimator: ResourceEstimator | None = None
        self._model: nn.Module | None = None

    # ----------------------------------------------------------- building
    def prepare(self, model: nn.Module,
                candidates: Mapping[str, Sequence[int]] | None = None
                ) -> None:
        """Analyzes ``model`` and converts its layers to dynamic ones.

        With ``width_cap > 1`` the layers are first rebuilt at the capped
        widths and the wider model is analyzed again. The analysis'
        trace (at the max widths) gives the input shape of every conv and
        linear layer (:attr:`layer_input_shapes`, what latency ops are
        timed at).

        Args:
            model: the model.
            candidates: producer module name -> candidate widths of the
                group it belongs to, replacing the ``width_ratios`` ones
                (a search space's own, e.g. FBNetV2's).
        """
        self.analysis = analyze_channels(model, self.input_shape)
        unknown = [g for g in self.frozen_groups
                   if g not in self.analysis.groups]
        if unknown:
            raise ConfigError(
                f'mutator frozen_groups: unknown group(s) {unknown}; valid '
                f'groups are {list(self.analysis.groups)}.')
        self.original_widths = {name: g.max_width
                                for name, g in self.analysis.groups.items()}
        if self.width_cap > 1:
            resize_layers(model, self.analysis, self._capped_widths())
            self.analysis = analyze_channels(model, self.input_shape)
        self.estimator = ResourceEstimator(self.analysis, model)
        self.widths = {name: ChannelWidth(name, g.max_width, g.max_width)
                       for name, g in self.analysis.groups.items()}
        self.explicit_candidates = self._group_candidates(candidates or {})
        for name, info in self.analysis.layers.items():
            if not info.input_groups() and not info.output_groups():
                continue
            out_width = self.widths[info.out_group] \
                if LAYER_KINDS[info.kind].produces and info.out_group else None
            make_dynamic(model.get_submodule(name), out_width,
                         depthwise=info.kind == 'dwconv',
                         input_parts=self._channel_parts(info.in_parts),
                         output_parts=self._channel_parts(info.out_parts),
                         input_width=self.widths[info.in_group]
                         if info.in_group else None, check_input=True)
        self._model = model
        self.layer_input_shapes = {
            name: info.input_shape
            for name, info in self.analysis.layers.items()
            if info.kind != 'bn'}
        if self.latency_table:
            self.estimator.latency = self.latency_model(LatencyTable.load(
                self.latency_table, self.latency_device))

    def _channel_parts(self, parts: tuple | None) -> ChannelParts | None:
        """The dynamic layers' view of a layer's input or output parts."""
        if not parts:
            return None
        return ChannelParts([(self.widths[group] if group else None, width)
                             for group, width in parts])

    def _group_candidates(self, candidates: Mapping[str, Sequence[int]]
                          ) -> dict[str, list[int]]:
        """Group -> the candidates given for one of its producers."""
        found = {}
        for name, group in self.analysis.groups.items():
            for producer in group.producers:
                if producer not in candidates:
                    continue
                widths = sorted(set(candidates[producer]))
                if not widths or not all(
                        _is_positive_int(w) and w <= group.max_width
                        and w % group.divisor == 0 for w in widths):
                    raise ConfigError(
                        f'candidates of {producer} (group {name}): '
                        f'{list(candidates[producer])} must be widths in '
                        f'[1, {group.max_width}], multiples of '
                        f'{group.divisor}.')
                found[name] = widths
                break
        return found

    @property
    def model(self) -> nn.Module:
        """The supernet this mutator prepared."""
        if self._model is None:
            raise RuntimeError('call ChannelMutator.prepare(model) first')
        return self._model

    def _capped_widths(self) -> dict[str, int]:
        """Group name -> width_cap times its width, rounded up to the
        divisors; frozen groups keep their width."""
        capped = {}
        for name, group in self.analysis.groups.items():
            if name in self.frozen_groups:
                continue
            step = self._width_step(name)
            capped[name] = -(-math.ceil(group.max_width * self.width_cap)
                             // step) * step
        return capped

    def _width_step(self, group: str, divisor: int | None = None) -> int:
        """The multiple every width of ``group`` is rounded to: the
        mutator's divisor (or ``divisor``) and the group's own."""
        return math.lcm(self.divisor if divisor is None else divisor,
                        self.analysis.groups[group].divisor)

    # ------------------------------------------------------------ choices
    @property
    def max_widths(self) -> dict[str, int]:
        """Group name -> largest width (the model's, times width_cap)."""
        return {name: w.max_width for name, w in self.widths.items()}

    @property
    def divisors(self) -> dict[str, int]:
        """Group name -> the number its widths must be multiples of."""
        return {name: g.divisor for name, g in self.analysis.groups.items()}

    @property
    def searchable_groups(self) -> list[str]:
        """Groups search may change (all but the frozen ones)."""
        return [g for g in self.widths if g not in self.frozen_groups]

    def round_width(self, group: str, value: float,
                    divisor: int | None = None) -> int:
        """``value`` rounded to the divisors, within [min_width, max].

        Args:
            group: the group whose width is rounded.
            value: the width before rounding.
            divisor: overrides the mutator's divisor (the group's own, from
                grouped convs, always applies).
        """
        top = self.widths[group].max_width
        step = self._width_step(group, divisor)
        floor = -(-min(self.min_width, top) // step) * step  # round up
        return min(top, make_divisible(value, step, floor))

    def candidates(self, group: str) -> list[int]:
        """Candidate widths of ``group``, ascending: the ones given to
        :meth:`prepare`, else ``width_ratios`` of its max (max included)."""
        top = self.widths[group].max_width
        if group in self.frozen_groups:
            return [top]
        if group in self.explicit_candidates:
            return list(self.explicit_candidates[group])
        values = {self.round_width(group, top * r) for r in self.width_ratios}
        values.add(top)
        return sorted(values)

    @property
    def candidate_widths(self) -> dict[str, list[int]]:
        """Group name -> :meth:`candidates`, for every group."""
        return {group: self.candidates(group) for group in self.widths}

    def current_choices(self) -> dict[str, int]:
        """Group name -> current width."""
        return {name: w.current for name, w in self.widths.items()}

    def set_choices(self, choices: Mapping[str, int] | ChannelConfig) -> None:
        """Sets every group's width; validates like a channel_cfg file (a
        file's meta is compared with this model once, see
        :meth:`meta_mismatches`)."""
        cfg = choices if isinstance(choices, ChannelConfig) else \
            parse_channel_cfg({'channels': dict(choices)}, '<choices>')
        validate_channels(cfg, self.max_widths, self.divisors)
        for name, width in cfg.channels.items():
            self.widths[name].current = int(width)
        key = (cfg.source, tuple(cfg.channels.items()), cfg.resolution)
        if cfg.meta and key not in self._meta_checked:
            self.check_meta(cfg)
            self._meta_checked.add(key)

    def meta_mismatches(self, cfg: ChannelConfig) -> list[str]:
        """Where a channel_cfg's meta (written by the tool that made it)
        disagrees with this model: the input shape it was made for, and
        its params/FLOPs at its widths. Group names alone cannot tell a
        file for a sibling model (1.0x vs 1.5x, another input size) from
        one for this model."""
        meta, problems = cfg.meta, []
        shape = list(self.input_shape)
        if cfg.resolution is not None:
            shape[1:] = [cfg.resolution, cfg.resolution]
        if 'input_shape' in meta and list(meta['input_shape']) != shape:
            problems.append(f'it was made for input shape '
                            f'{list(meta["input_shape"])}, this model is '
                            f'traced at {shape}')
        if cfg.blocks:  # block choices: the estimator does not price them
            return problems
        estimate = self.estimate(cfg.channels)
        metrics = ['params']
        if not problems and cfg.resolution is None:
            metrics.append('flops')  # FLOPs depend on the input shape
        for metric in metrics:
            value = meta.get(metric)
            if isinstance(value, (int, float)) and not math.isclose(
                    value, estimate[metric], rel_tol=1e-6, abs_tol=0.5):
                problems.append(f'its meta says {metric} {value:g}, this '
                                f'model at its widths has '
                                f'{estimate[metric]:g}')
        return problems

    def check_meta(self, cfg: ChannelConfig) -> None:
        """Warns (or, with ``strict_meta``, raises) when
        :meth:`meta_mismatches` finds any."""
        problems = self.meta_mismatches(cfg)
        if not problems:
            return
        message = (f'channel_cfg {cfg.source} may be for another model '
                   f'(meta model: {cfg.meta.get("model", "?")}): '
                   f'{"; ".join(problems)}.')
        if self.strict_meta:
            raise ChannelConfigError(
                f'{message} Use the file made for this model and input '
                'shape, or drop --strict (mutator.strict_meta) to go on.')
        MMLogger.get_current_instance().warning(
            f'{message} Going on with its widths; --strict '
            '(mutator.strict_meta=True) makes this an error.')

    def set_max(self) -> None:
        """Every group at its largest candidate."""
        self.set_choices({g: self.candidates(g)[-1] for g in self.widths})

    def set_min(self) -> None:
        """Every group at its smallest candidate."""
        self.set_choices({g: self.candidates(g)[0] for g in self.widths})

    def sample(self, rng: random.Random | None = None) -> dict[str, int]:
        """Sets and returns a uniformly random candidate per group."""
        rng = rng or random
        choices = {g: rng.choice(self.candidates(g)) for g in self.widths}
        self.set_choices(choices)
        return choices

    def uniform_choices(self, ratio: float,
                        divisor: int | None = None) -> dict[str, int]:
        """Every searchable group at ``ratio`` of its max width, rounded to
        ``divisor`` (default: the mutator's); frozen groups stay at max."""
        return {group: width.max_width if group in self.frozen_groups
                else self.round_width(group, width.max_width * ratio,
                                      divisor)
                for group, width in self.widths.items()}

    def uniform_for_budget(self, metric: str, budget: float,
                           divisor: int | None = None
                           ) -> tuple[float, dict[str, int]]:
        """The widest uniform network whose ``metric`` is <= budget.

        The widest common width ratio under the budget is found first; as
        rounding makes the cost jump at some ratios (several groups round up
        together), groups furthest below that ratio then get one rounding
        step more each while the budget holds, so every group stays within
        one step of the common ratio and the cost lands close to the
        budget.

        Args:
            metric: an estimator metric ('flops', 'params').
            budget: the largest allowed value.
            divisor: rounding of the widths (default: the mutator's); 1
                tracks the budget most closely.

        Returns:
            The common ratio and the choices.
        """
        if metric not in self.estimate(self.max_widths):
            raise BudgetError(
                f'metric {metric!r} is not estimated for this model; use one '
                f'of {sorted(self.estimate(self.max_widths))}.')
        if not math.isfinite(budget) or budget <= 0:
            raise BudgetError(f'{metric} budget {budget!r} is not a positive '
                              'finite number.')
        if divisor is not None and divisor < 1:
            raise BudgetError(f'divisor {divisor} must be a positive '
                              'integer.')

        def cost(choices: Mapping[str, int]) -> float:
            return self.estimate(choices)[metric]

        def usage(ratio: float) -> float:
            return cost(self.uniform_choices(ratio, divisor))

        if usage(1.0) <= budget:
            return 1.0, self.uniform_choices(1.0, divisor)
        floor = usage(1e-6)
        if floor > budget:
            raise BudgetError(
                f'{metric} budget {budget:g} is below the narrowest uniform '
                f'network ({floor:g}); raise the budget or lower min_width.')
        low, high = 0.0, 1.0
        for _ in range(40):
            middle = (low + high) / 2
            low, high = (middle, high) if usage(middle) <= budget \
                else (low, middle)
        choices = self.uniform_choices(low, divisor)
        widened: set[str] = set()
        while True:
            behind = sorted(
                (choices[g] / self.widths[g].max_width, g)
                for g in self.searchable_groups if g not in widened)
            for _, group in behind:
                widened.add(group)
                step = self._width_step(group, divisor)
                wider = dict(choices, **{group: min(
                    self.widths[group].max_width, choices[group] + step)})
                if wider[group] > choices[group] and cost(wider) <= budget:
                    choices = wider
                    break
            else:
                return low, choices

    def fit_budget(self, choices: Mapping[str, int], metric: str,
                   budget: float, keep: Iterable[str] = (),
                   tolerance: float = 0.01) -> dict[str, int]:
        """``choices`` rescaled so that ``metric`` is within tolerance of
        ``budget``.

        Every searchable group not in ``keep`` is scaled by one common
        factor (found by bisection, rounded to the divisors); then single
        divisor steps of the group that brings the usage closest to the
        budget are applied until it is within ``tolerance``.

        Args:
            choices: the widths to rescale.
            metric: an estimator metric ('flops', 'params').
            budget: the value to reach.
            keep: groups that keep their widths.
            tolerance: allowed relative distance to the budget.

        Raises:
            BudgetError: when no widths within [min_width, max] reach it.
        """
        kept = set(keep)
        free = [g for g in self.searchable_groups if g not in kept]

        def scaled(factor: float) -> dict[str, int]:
            return {**choices, **{g: self.round_width(g, choices[g] * factor)
                                  for g in free}}

        def usage(widths: Mapping[str, int]) -> float:
            return self.estimate(widths)[metric]

        high = max((self.max_widths[g] / choices[g] for g in free),
                   default=1.0)
        lowest, highest = usage(scaled(1e-6)), usage(scaled(high))
        if not lowest * (1 - tolerance) <= budget <= highest * (
                1 + tolerance):
            raise BudgetError(
                f'{metric} budget {budget:g} is out of reach: rescaling the '
                f'groups {free if keep else "(all)"} gives {lowest:g} to '
                f'{highest:g}; choose a budget in that range, or change '
                "the mutator's min_width / width_cap.")
        low = 1e-6
        for _ in range(40):
            middle = (low + high) / 2
            low, high = (middle, high) if usage(scaled(middle)) <= budget \
                else (low, middle)
        best = min((scaled(low), scaled(high)),
                   key=lambda w: abs(usage(w) - budget))
        while abs(usage(best) - budget) > tolerance * budget:
            nearer = min((self.step_widths(best, g, sign) for g in free
                          for sign in (-1, 1)),
                         key=lambda w: abs(usage(w) - budget))
            if abs(usage(nearer) - budget) >= abs(usage(best) - budget):
                raise BudgetError(
                    f'{metric} budget {budget:g}: the nearest widths give '
                    f'{usage(best):g}, not within {tolerance:.1%}; raise '
                    "the tolerance or lower the mutator's divisor.")
            best = nearer
        return best

    def step_widths(self, choices: Mapping[str, int], group: str,
                    sign: int) -> dict[str, int]:
        """``choices`` with ``group`` one divisor step wider or narrower
        (unchanged at its bounds)."""
        width = self.round_width(
            group, choices[group] + sign * self._width_step(group))
        return {**choices, group: width}

    def channel_config(self, choices: Mapping[str, int], model: str,
                       source: str, **extra) -> ChannelConfig:
        """``choices`` as a search result: a channel_cfg whose meta holds
        the model config, input shape, FLOPs, params, ``extra`` and where
        it came from."""
        usage = self.estimate(choices)
        return ChannelConfig(dict(choices), dict(
            model=model, input_shape=list(self.input_shape),
            flops=usage['flops'], params=usage['params'], **extra,
            source=source))

    def estimate(self, choices: Mapping[str, int] | None = None
                 ) -> dict[str, float]:
        """FLOPs and params of ``choices`` (default: the current ones)."""
        return self.estimator.estimate(
            self.current_choices() if choices is None else choices)

    # ------------------------------------------------------------ latency
    def latency_ops(self) -> list[OpSpec]:
        """Every op a latency table of this supernet must hold: each
        analyzed conv and linear layer at every pair of candidate widths of
        its groups (:func:`~mmchansearch.channel_latency.channel_ops`)."""
        return channel_ops(self.analysis, self.model, self.candidate_widths,
                           self.layer_input_shapes)

    def latency_model(self, table: LatencyTable) -> ChannelLatencyModel:
        """The latency of any choice of this supernet's widths, from
        ``table`` (:class:`~mmchansearch.channel_latency.ChannelLatencyModel`
        of the candidate widths and the input shapes recorded by
        :meth:`prepare`)."""
        return ChannelLatencyModel(self.analysis, self.model,
                                   self.candidate_widths,
                                   self.layer_input_shapes, table)

    # ------------------------------------------------------------- export
    def export_static(self) -> nn.Module:
        """A static copy of the supernet at the current widths.

        Every dynamic layer becomes a plain layer whose tensors are clones of
        the slices in use, so the result is physically smaller and runs
        without this toolbox. It is in the supernet's train/eval mode.
        """
        static = copy.deepcopy(self.model)
        widths = self.current_choices()
        for name, info in self.analysis.layers.items():
            module = static.get_submodule(name)
            if not is_dynamic(module):
                continue
            _replace_submodule(static, name,
                               module.to_static(info.input_width(widths)))
        return static.train(self.model.training)


def _replace_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition('.')
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)
