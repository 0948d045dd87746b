"""The compared methods: each searches under the budget with its own
tools and names the network its retraining config should train.

A method is registered in ``COMPARED_METHODS`` under its lower-case name
(``autoslim``, ``network_adjustment``, ``rexnet``, ``dmasking``, ``dnas``;
``uniform`` for the baseline), the key of its entry in the compare config's
``methods``; its class is ``<Method>Run``. Adding one means implementing
:meth:`ComparedMethod.search`.
"""
from __future__ import annotations

import glob
import os
from abc import ABCMeta, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..channel_cfg import save_channel_cfg
from ..errors import ConfigError
from ..registry import COMPARED_METHODS
from ..supernet import build_supernet
from ..tool_runs import ToolRunner
from .runs import derive_config

BUDGET_KINDS = ('flops', 'latency')


@dataclass
class SearchContext:
    """What a method's search gets.

    Attributes:
        work_dir: the method's own folder.
        budget: 'flops' (conv + linear MACs) and, once the baseline is
            measured, 'latency' (ms on this CPU, batch 1, one thread).
        runner: runs and times the method's tool calls (its search cost).
        data_root: replaces every dataset's ``data_root`` (None: keep).
    """
    work_dir: str
    budget: Mapping[str, float]
    runner: ToolRunner
    data_root: str | None = None

    def derive(self, source: str, overrides: Sequence[Mapping | None],
               name: str) -> str:
        """``source`` with ``overrides`` merged, written to the method's
        folder as ``name``."""
        return derive_config(source, overrides,
                             os.path.join(self.work_dir, name),
                             self.data_root)


class ComparedMethod(metaclass=ABCMeta):
    """One row of the comparison.

    Args:
        name: the row's label.
        retrain: the config that retrains the result (from scratch).
        budget: which budget the search meets: 'flops' or 'latency'.
        overrides: merged into the method's search config(s), e.g. a
            shorter schedule.
        retrain_overrides: merged into ``retrain`` before the comparison's
            common recipe, e.g. the search space the result belongs to.
    """
    latency_support = False

    def __init__(self, name: str, retrain: str, budget: str = 'flops',
                 overrides: Mapping | None = None,
                 retrain_overrides: Mapping | None = None) -> None:
        if budget not in BUDGET_KINDS:
            raise ConfigError(f'{name}: budget must be one of '
                              f'{BUDGET_KINDS}, got {budget!r}.')
        if budget == 'latency' and not self.latency_support:
            raise ConfigError(f'{name}: {type(self).__name__} searches '
                              "under a FLOPs budget only; use budget='flops'.")
        self.name, self.retrain, self.budget = name, retrain, budget
        self.overrides = dict(overrides or {})
        self.retrain_overrides = dict(retrain_overrides or {})

    @abstractmethod
    def search(self, ctx: SearchContext) -> dict:
        """Runs (or resumes) the search; returns the overrides that make
        ``retrain`` build the network it found."""


@COMPARED_METHODS.register_module(name='uniform')
class UniformWidthRun(ComparedMethod):
    """The baseline: every channel group at the same fraction of its width,
    the widest such network within the FLOPs budget (``retrain``'s
    mutator defines the groups).

    Args:
        divisor: widths rounded to multiples of it (1 tracks the budget).
    """

    def __init__(self, name: str, retrain: str, divisor: int = 1,
                 **kwargs) -> None:
        super().__init__(name, retrain, **kwargs)
        self.divisor = divisor

    def search(self, ctx: SearchContext) -> dict:
        path = os.path.join(ctx.work_dir, 'uniform.yaml')
        if not os.path.isfile(path):
            config = ctx.derive(self.retrain, [self.retrain_overrides],
                                'model.py')
            mutator = build_supernet(config).mutator
            ratio, choices = mutator.uniform_for_budget(
                'flops', ctx.budget['flops'], self.divisor)
            save_channel_cfg(mutator.channel_config(
                choices, self.retrain, f'uniform width x{ratio:.4f}'),
                path, mutator.max_widths)
        return dict(model=dict(channel_cfgs=path))


class ToolSearch(ComparedMethod):
    """A method run by ``tools/search.py`` on a search config; subclasses
    say how the budget enters the config and which file is the result.

    Args:
        search: the search config.
    """
    result_file = 'derived.yaml'
    # where a latency table goes in the config (when latency_support)
    latency_table_key = 'model.mutator'

    def __init__(self, name: str, search: str, retrain: str, **kwargs
                 ) -> None:
        super().__init__(name, retrain, **kwargs)
        self.search_config = search

    @abstractmethod
    def budget_overrides(self, value: float) -> dict:
        """Config overrides that set the budget (``self.budget`` kind)."""

    def network_overrides(self, result: str) -> dict:
        """Retraining overrides for the result file: every method's result
        is a channel_cfg, every retrain config takes it as
        ``model.channel_cfgs``."""
        return dict(model=dict(channel_cfgs=result))

    def checkpoint_args(self, ctx: SearchContext) -> list[str]:
        """Positional arguments after the config (e.g. a supernet)."""
        return []

    def result(self, search_dir: str) -> str:
        return os.path.join(search_dir, self.result_file)

    def search(self, ctx: SearchContext) -> dict:
        overrides = [self.overrides]
        if self.budget == 'latency':
            overrides.append(self._latency_table(ctx))
        overrides.append(self.budget_overrides(ctx.budget[self.budget]))
        config = ctx.derive(self.search_config, overrides, 'search.py')
        search_dir = os.path.join(ctx.work_dir, 'search')
        ctx.runner.run('search', 'tools/search.py', config,
                       *self.checkpoint_args(ctx), '--work-dir', search_dir,
                       '--resume')
        return self.network_overrides(self.result(search_dir))

    def _latency_table(self, ctx: SearchContext) -> dict:
        """Measures the search space's latency table on this CPU (one
        thread, calibrated) and returns the overrides that use it."""
        plain = ctx.derive(self.search_config, [self.overrides],
                           'search_space.py')
        table = os.path.join(ctx.work_dir, 'latency_table.json')
        ctx.runner.run('latency_table', 'tools/build_latency_lut.py', plain,
                       '--device', 'cpu', '--threads', '1', '-o', table)
        settings = dict(latency_table=table, latency_device='cpu')
        for key in reversed(self.latency_table_key.split('.')):
            settings = {key: settings}
        return settings


@COMPARED_METHODS.register_module(name='autoslim')
class AutoSlimRun(ToolSearch):
    """AutoSlim: trains the slimmable supernet, then the greedy search for
    the budget (one target).

    Args:
        supernet: the supernet training config.
        supernet_overrides: merged into it (e.g. fewer epochs).
    """
    latency_support = True

    def __init__(self, name: str, supernet: str, search: str, retrain: str,
                 supernet_overrides: Mapping | None = None, **kwargs) -> None:
        super().__init__(name, search, retrain, **kwargs)
        self.supernet = supernet
        self.supernet_overrides = dict(supernet_overrides or {})

    def checkpoint_args(self, ctx: SearchContext) -> list[str]:
        config = ctx.derive(self.supernet, [self.supernet_overrides],
                            'supernet.py')
        train_dir = os.path.join(ctx.work_dir, 'supernet')
        ctx.runner.run('supernet', 'tools/train.py', config, '--work-dir',
                       train_dir, '--resume')
        with open(os.path.join(train_dir, 'last_checkpoint')) as f:
            return [f.read().strip()]

    def budget_overrides(self, value: float) -> dict:
        return dict(search_loop=dict(targets=[value],
                                     constraint=self.budget))

    def result(self, search_dir: str) -> str:
        found = glob.glob(os.path.join(search_dir, 'subnet_*.yaml'))
        if len(found) != 1:
            raise ConfigError(f'expected one subnet_*.yaml in {search_dir} '
                              f'(one target), found {len(found)}.')
        return found[0]


@COMPARED_METHODS.register_module(name='network_adjustment')
class NetworkAdjustmentRun(ToolSearch):
    """Network Adjustment started from the base network rescaled to the
    budget; FLOPs stay at the budget every round."""
    result_file = 'final.yaml'

    def budget_overrides(self, value: float) -> dict:
        return dict(search_loop=dict(budget=value))


@COMPARED_METHODS.register_module(name='rexnet')
class ReXNetRun(ToolSearch):
    """The ReXNet search: block widths as a (piecewise) linear function of
    the block index, sampled within [window x budget, budget] FLOPs.

    Args:
        window: the lowest FLOPs a candidate may have, as a fraction of
            the budget.
    """
    result_file = 'best.yaml'

    def __init__(self, name: str, search: str, retrain: str,
                 window: float = 0.9, **kwargs) -> None:
        super().__init__(name, search, retrain, **kwargs)
        if not 0 < window < 1:
            raise ConfigError(f'{name}: window must be in (0, 1), got '
                              f'{window!r}.')
        self.window = window

    def budget_overrides(self, value: float) -> dict:
        return dict(search_loop=dict(min_flops=self.window * value,
                                     max_flops=value))



def _cost_target_overrides(budget: str, value: float) -> dict:
    """A differentiable search's cost term aims at the budget."""
    return dict(model=dict(cost_metric=budget, target=value))


@COMPARED_METHODS.register_module(name='dmasking')
class DMaskingNASRun(ToolSearch):
    """FBNetV2's differentiable channel search (DMaskingNAS); the cost
    term's target is the budget."""
    latency_support = True

    def budget_overrides(self, value: float) -> dict:
        return _cost_target_overrides(self.budget, value)


@COMPARED_METHODS.register_module(name='dnas')
class DNASRun(ToolSearch):
    """FBNet's block-choice search (DNAS); the cost term's target is the
    budget."""
    latency_support = True
    latency_table_key = 'model'

    def budget_overrides(self, value: float) -> dict:
        return _cost_target_overrides(self.budget, value)
