"""ReXNet's channel parameterization search as an mmengine loop.

Han et al. (CVPR 2021, Section 4) search the output channels of a
fixed-depth network as ``c_i = a * f(i) + b``, ``f`` piecewise linear in the
block index ``i``, train every sampled network briefly and look at how the
channels of the best and worst ones grow: the best grow linearly.

The paper searched a plain inverted-bottleneck network on CIFAR-style data
(``PlainInvertedBottleneckNet``); the loop also searches a ReXNet backbone
of fixed depth.

Here ``f`` rises from 0 at the first block to 1 at the last through a few
knots (block index, value), values non-decreasing, so ``b`` is the first
block's width and ``a`` what the widths grow by. A one-block segment is a
jump, so MobileNetV2's stage-wise steps are one such ``f``
(:func:`stagewise_knots`). Widths are rounded to a divisor; FLOPs and
params of every sample are estimated analytically and the sample rejected
unless within the budget, all before any training. Each kept candidate is
trained for the config's short schedule per seed (a child Runner in
``WORK_DIR/candidate_<k>/seed_<s>``), and the seeds' final validation
accuracies averaged.
"""
from __future__ import annotations

import copy
import csv
import io
import os
import random
import statistics
from collections.abc import Sequence

import torch
from mmengine import dist
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.runner import BaseLoop

from ..analysis import analyze_channels
from ..channel_cfg import ChannelConfig, save_channel_cfg
from ..distributed import run_on_main
from ..errors import BudgetError, ConfigError
from ..estimators import ResourceEstimator
from ..fileio import atomic_write_text
from ..models.backbones.plain_inverted_bottleneck import DEFAULT_STAGE_BLOCKS
from ..models.backbones.rexnet import STAGE_BLOCKS, block_names
from ..registry import LOOPS, MODELS
from ..visualization import plot_channel_curves
from .child_training import (  # noqa: F401  (split_jobs: tests import it)
    check_isolate,
    fresh_child_config,
    split_jobs,
    train_child,
    train_jobs,
)
from .search_state import SearchState, search_dependencies

STATE_FILE = 'rexnet_search_state.json'
# backbones with a ``block_channels`` argument, one width per block:
# ReXNet itself and the paper's search network (plain inverted bottlenecks)
SEARCHABLE_BACKBONES = ('ReXNet', 'PlainInvertedBottleneckNet')
Knots = list[list[float]]  # [[block index, f value], ...]


# ------------------------------------------------------- parameterization
def curve_values(knots: Knots, num_blocks: int) -> list[float]:
    """``f(i)`` for every block: linear between the knots.

    Args:
        knots: (block index, value) pairs, indices increasing from 0 to
            ``num_blocks - 1``.
        num_blocks: number of blocks.

    Returns:
        ``num_blocks`` values.
    """
    values = []
    for i in range(num_blocks):
        for (x0, y0), (x1, y1) in zip(knots, knots[1:]):
            if x0 <= i <= x1:
                values.append(y0 + (y1 - y0) * (i - x0) / (x1 - x0)
                              if x1 > x0 else y1)
                break
        else:
            values.append(knots[-1][1] if i > knots[-1][0] else knots[0][1])
    return values


def curve_channels(a: float, b: float, knots: Knots, num_blocks: int,
                   divisor: int = 1) -> list[int]:
    """Block widths ``a * f(i) + b``, rounded to a multiple of ``divisor``
    (at least one divisor) and never decreasing.

    Args:
        a: channels added from the first to the last block.
        b: channels of the first block.
        knots: the knots of ``f`` (see :func:`curve_values`).
        num_blocks: number of blocks.
        divisor: widths become multiples of it.

    Returns:
        ``num_blocks`` widths.
    """
    channels, last = [], 0
    for value in curve_values(knots, num_blocks):
        width = max(divisor, int(round((a * value + b) / divisor)) * divisor)
        last = max(last, width)
        channels.append(last)
    return channels


def stagewise_knots(stage_blocks: Sequence[int],
                    stage_values: Sequence[float]) -> Knots:
    """Knots of a step ``f``: constant within a stage, jumping to the
    next stage's value between its last block and the next stage's first.

    Args:
        stage_blocks: blocks per stage.
        stage_values: ``f`` of each stage, non-decreasing (the first
            normally 0, the last 1).

    Returns:
        The knots.
    """
    knots, start = [], 0
    for n, value in zip(stage_blocks, stage_values):
        knots.append([start, float(value)])
        if n > 1:
            knots.append([start + n - 1, float(value)])
        start += n
    return knots


def sample_parameters(rng: random.Random, stage_blocks: Sequence[int],
                      first_channels: Sequence[float],
                      increase: Sequence[float], max_breakpoints: int,
                      stagewise_prob: float) -> dict:
    """Draws ``a``, ``b`` and the knots of one candidate.

    Args:
        rng: the random generator.
        stage_blocks: blocks per stage of the fixed-depth network.
        first_channels: (low, high) of ``b``.
        increase: (low, high) of ``a``.
        max_breakpoints: most interior knots of a piecewise-linear ``f``
            (0: a straight line).
        stagewise_prob: how often ``f`` is a stage-wise step instead.

    Returns:
        ``dict(kind, a, b, knots)``.
    """
    num_blocks = sum(stage_blocks)
    a, b = rng.uniform(*increase), rng.uniform(*first_channels)
    if rng.random() < stagewise_prob:
        inner = sorted(rng.random() for _ in range(len(stage_blocks) - 2))
        knots = stagewise_knots(stage_blocks, [0.0, *inner, 1.0])
        return dict(kind='stagewise', a=a, b=b, knots=knots)
    interior = list(range(1, num_blocks - 1))
    count = rng.randint(0, min(max_breakpoints, len(interior)))
    indices = sorted(rng.sample(interior, count))
    values = sorted(rng.random() for _ in indices)
    knots = [[0, 0.0], *([i, v] for i, v in zip(indices, values)),
             [num_blocks - 1, 1.0]]
    return dict(kind='piecewise' if count else 'linear', a=a, b=b,
                knots=knots)


def fit_line(channel_lists: Sequence[Sequence[int]]) -> tuple[float, float]:
    """Least-squares line ``c = slope * i + intercept`` through the widths
    of every block of every given network.

    Args:
        channel_lists: block widths of one or more networks.

    Returns:
        (slope, intercept).
    """
    xs = [float(i) for c in channel_lists for i in range(len(c))]
    ys = [float(v) for c in channel_lists for v in c]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y)
                for x, y in zip(xs, ys)) / var if var else 0.0
    return slope, mean_y - slope * mean_x


# ----------------------------------------------------------------- budget
class ReXNetBudget:
    """Exact conv + linear FLOPs and params of the config's model at given
    block widths (one trace per new width list, cached).

    Args:
        model_cfg: the classifier config with a backbone of
            ``SEARCHABLE_BACKBONES``.
        input_shape: (C, H, W) of one input.
    """

    def __init__(self, model_cfg: dict, input_shape: Sequence[int]) -> None:
        self.model_cfg = model_cfg
        self.input_shape = tuple(input_shape)
        self._cache: dict[tuple[int, ...], dict[str, float]] = {}
        self._groups: dict[tuple[int, ...], dict[str, int]] = {}
        name = 'rexnet_search_budget'  # warnings of the traces muted
        self._quiet = MMLogger.get_instance(name) if \
            MMLogger.check_instance_created(name) else \
            MMLogger.get_instance(name, log_level='ERROR')

    def estimate(self, channels: Sequence[int]) -> dict[str, float]:
        """FLOPs and params of the model with these block widths."""
        key = tuple(channels)
        if key not in self._cache:
            cfg = copy.deepcopy(self.model_cfg)
            cfg['backbone']['block_channels'] = list(key)
            with torch.no_grad():
                model = MODELS.build(cfg)
                analysis = analyze_channels(model, self.input_shape,
                                            logger=self._quiet)
                self._cache[key] = ResourceEstimator(
                    analysis, model).estimate({})
                self._groups[key] = {name: g.max_width for name, g
                                     in analysis.groups.items()}
        return self._cache[key]

    def channel_groups(self, channels: Sequence[int]) -> dict[str, int]:
        """The channel groups of the model with these block widths, each
        at its full width (a channel_cfg's ``channels:``)."""
        self.estimate(channels)
        return dict(self._groups[tuple(channels)])


# ------------------------------------------------------------------ loop
@LOOPS.register_module()
class ReXNetSearchLoop(BaseLoop):
    """Samples, trains and ranks ReXNet channel configurations.

    Args:
        runner: the Runner of the search config; its ``model`` (an
            ImageClassifier with a ReXNet or PlainInvertedBottleneckNet
            backbone) fixes the depth, and
            its config (schedule, data, ``val_evaluator``) trains every
            candidate.
        num_candidates: networks to sample and train.
        max_flops: FLOPs limit (conv + linear multiply-accumulates).
        max_params: params limit.
        min_flops: FLOPs floor, keeping candidates near the budget; None
            for none.
        min_params: params floor; None for none.
        first_channels: (low, high) of ``b``, the first block's width.
        increase: (low, high) of ``a``, the widths added over the blocks.
        max_breakpoints: most interior knots of a piecewise-linear ``f``.
        stagewise_prob: share of samples whose ``f`` is a stage-wise step.
        divisor: widths are multiples of it.
        input_shape: (C, H, W) the budget is computed at.
        seeds: trainings (seeds) per candidate, averaged.
        patience: validations without improvement before a training stops
            early (mmengine's ``EarlyStoppingHook``); None trains the full
            schedule.
        metric: the validation metric ranked on.
        top_fraction: share of the best candidates the linear rule is
            fitted to and plotted as "top".
        max_tries: samples drawn at most (default 200 per candidate).
        seed: seeds the sampling.
        isolate: train every candidate in a subprocess; None does so only
            when the search runs on several ranks.
        checkpoint: unused (tools/search.py passes it).
        resume: continue from the state in the work dir.
        force: start over although the work dir holds a search state.
        model_name: written into the best file.
    """

    def __init__(self,
                 runner,
                 num_candidates: int = 200,
                 max_flops: float = float('inf'),
                 max_params: float = float('inf'),
                 min_flops: float | None = None,
                 min_params: float | None = None,
                 first_channels: Sequence[float] = (16, 64),
                 increase: Sequence[float] = (64, 256),
                 max_breakpoints: int = 2,
                 stagewise_prob: float = 0.2,
                 divisor: int = 1,
                 input_shape: Sequence[int] = (3, 224, 224),
                 seeds: int = 3,
                 patience: int | None = None,
                 metric: str = 'accuracy/top1',
                 top_fraction: float = 0.1,
                 max_tries: int | None = None,
                 seed: int = 0,
                 isolate: bool | None = None,
                 checkpoint: str | None = None,
                 resume: bool = False,
                 force: bool = False,
                 model_name: str = '') -> None:
        super().__init__(runner, None)
        for name, value in (('num_candidates', num_candidates),
                            ('seeds', seeds), ('divisor', divisor)):
            if not (isinstance(value, int) and value >= 1):
                raise ConfigError(f'search_loop.{name} must be an integer '
                                  f'>= 1, got {value!r}.')
        for name, pair in (('first_channels', first_channels),
                           ('increase', increase)):
            if not (len(pair) == 2 and 0 <= pair[0] <= pair[1]):
                raise ConfigError(f'search_loop.{name} must be (low, high) '
                                  f'with 0 <= low <= high, got {pair!r}.')
        if not 0 < top_fraction <= 1:
            raise ConfigError(f'search_loop.top_fraction must be in (0, 1], '
                              f'got {top_fraction!r}.')
        backbone = runner.cfg.model.get('backbone', {})
        kind = backbone.get('type')
        if kind not in SEARCHABLE_BACKBONES:
            raise ConfigError(
                'ReXNetSearchLoop searches the block widths of a '
                f'{" or ".join(SEARCHABLE_BACKBONES)} backbone; '
                f'the config\'s model.backbone.type is {kind!r}.')
        self.stage_blocks = list(backbone.get('stage_blocks') or (
            STAGE_BLOCKS if kind == 'ReXNet' else DEFAULT_STAGE_BLOCKS))
        self.num_blocks = sum(self.stage_blocks)
        self.num_candidates, self.seeds = num_candidates, seeds
        self.limits = dict(max_flops=max_flops, max_params=max_params,
                           min_flops=min_flops, min_params=min_params)
        self.first_channels, self.increase = first_channels, increase
        self.max_breakpoints = max_breakpoints
        self.stagewise_prob, self.divisor = stagewise_prob, divisor
        self.patience, self.metric = patience, metric
        self.top_fraction = top_fraction
        self.max_tries = max_tries or 200 * num_candidates
        self.seed, self.isolate = seed, isolate
        check_isolate(isolate)
        self.resume, self.force = resume, force
        self.model_name = model_name
        # before the budget creates its (muted) logger
        self.logger = MMLogger.get_current_instance()
        self.budget = ReXNetBudget(runner.cfg.model.to_dict(), input_shape)
        self.work_dir = runner.work_dir

    # ------------------------------------------------------------ sample
    def _within(self, usage: dict[str, float]) -> bool:
        lim = self.limits
        return (usage['flops'] <= lim['max_flops']
                and usage['params'] <= lim['max_params']
                and usage['flops'] >= (lim['min_flops'] or 0)
                and usage['params'] >= (lim['min_params'] or 0))

    def _check_feasible(self) -> None:
        """BudgetError when even the narrowest allowed network breaks the
        limits (or the widest stays below the floors)."""
        last = self.num_blocks - 1
        narrow = curve_channels(self.increase[0], self.first_channels[0],
                                [[0, 0.0], [last - 1, 0.0], [last, 1.0]],
                                self.num_blocks, self.divisor)
        usage = self.budget.estimate(narrow)
        lim = self.limits
        if usage['flops'] > lim['max_flops'] or \
                usage['params'] > lim['max_params']:
            raise BudgetError(
                f'max_flops={lim["max_flops"]:g} / max_params='
                f'{lim["max_params"]:g} are out of reach: the smallest '
                f'achievable network (block widths {narrow}) has '
                f'{usage["flops"]:g} FLOPs and {usage["params"]:g} params. '
                'Raise search_loop.max_flops/max_params or lower '
                'search_loop.first_channels/increase (or the widen_factor '
                'of the stem and head).')
        wide = curve_channels(self.increase[1], self.first_channels[1],
                              [[0, 0.0], [1, 1.0], [last, 1.0]],
                              self.num_blocks, self.divisor)
        usage = self.budget.estimate(wide)
        if usage['flops'] < (lim['min_flops'] or 0) or \
                usage['params'] < (lim['min_params'] or 0):
            raise BudgetError(
                f'min_flops={lim["min_flops"]} / min_params='
                f'{lim["min_params"]} are out of reach: the largest '
                f'achievable network has {usage["flops"]:g} FLOPs and '
                f'{usage["params"]:g} params. Lower the floors or raise '
                'search_loop.first_channels/increase.')

    def sample_candidates(self) -> list[dict]:
        """Rejection-samples ``num_candidates`` distinct networks within
        the limits.

        Returns:
            Candidates: ``kind, a, b, knots, channels, flops, params``.

        Raises:
            BudgetError: the limits are infeasible or too few samples fall
                within them.
        """
        self._check_feasible()
        rng = random.Random(self.seed)
        candidates, seen, tries = [], set(), 0
        while len(candidates) < self.num_candidates:
            if tries == self.max_tries:
                raise BudgetError(
                    f'only {len(candidates)} of {tries} sampled networks '
                    f'fit the limits {self._describe_limits()}; widen the '
                    'limits, narrow search_loop.first_channels/increase '
                    'towards the budget, or raise search_loop.max_tries.')
            tries += 1
            params = sample_parameters(
                rng, self.stage_blocks, self.first_channels, self.increase,
                self.max_breakpoints, self.stagewise_prob)
            channels = curve_channels(params['a'], params['b'],
                                      params['knots'], self.num_blocks,
                                      self.divisor)
            if tuple(channels) in seen:
                continue
            usage = self.budget.estimate(channels)
            if not self._within(usage):
                continue
            seen.add(tuple(channels))
            candidates.append(dict(index=len(candidates), **params,
                                   channels=channels, **usage))
        self.logger.info(f'sampled {len(candidates)} candidates within '
                         f'{self._describe_limits()} from {tries} draws')
        return candidates

    def _describe_limits(self) -> str:
        return ', '.join(f'{k}={v:g}' for k, v in self.limits.items()
                         if v is not None and v != float('inf')) or 'none'

    # ------------------------------------------------------------- state
    def _path(self, *parts: str) -> str:
        return os.path.join(self.work_dir, *parts)

    def _load_or_sample(self) -> dict:
        """The saved state with --resume, else fresh candidates sampled on
        rank 0; the same on every rank."""
        self._store = SearchState(
            self._path(STATE_FILE),
            search_dependencies(self.runner.cfg, seeds=self._seed_list()),
            self.resume, self.force)
        state = self._store.load()
        if state is not None:
            self.logger.info(f'resuming the channel search from '
                             f'{self._store.path}: {len(state["results"])} '
                             'trainings done')
            return state
        state = run_on_main(lambda: dict(
            num_blocks=self.num_blocks, stage_blocks=self.stage_blocks,
            seeds=self._seed_list(), limits=self.limits,
            candidates=self.sample_candidates(), results={}))
        self._save_state(state)
        return state

    def _seed_list(self) -> list[int]:
        base = self.runner.cfg.get('randomness', {}).get('seed') or 0
        return [base + s for s in range(self.seeds)]

    def _save_state(self, state: dict) -> None:
        self._store.save(state)

    # --------------------------------------------------------------- run
    def run(self) -> str:
        """Samples (or reloads) the candidates, trains every unfinished
        (candidate, seed) job, writes the results; returns best.yaml."""
        state = self._load_or_sample()
        pending = [(c['index'], s) for c in state['candidates']
                   for s in state['seeds']
                   if _key(c['index'], s) not in state['results']]

        def record(done: list) -> None:
            for (index, seed), value in done:
                state['results'][_key(index, seed)] = value
            self._save_state(state)

        train_jobs(
            pending, lambda job: self._train(state['candidates'][job[0]],
                                             job[1]),
            record, lambda job: f'{self.metric} of candidate {job[0]} seed '
            f'{job[1]}', 'ReXNet channel search', 'That training diverged '
            '(NaN training loss or metric; its log is in WORK_DIR/candidate_'
            '<k>/seed_<s>): lower the learning rate of the config')
        return self._write_results(state)

    def _child_cfg(self, candidate: dict, seed: int) -> Config:
        cfg = fresh_child_config(
            self.runner.cfg,
            self._path(f'candidate_{candidate["index"]}', f'seed_{seed}'),
            f'candidate_{candidate["index"]}_seed_{seed}')
        cfg.model.backbone.block_channels = list(candidate['channels'])
        cfg.randomness = dict(cfg.get('randomness', {}), seed=seed)
        if self.patience:
            cfg.custom_hooks = [*cfg.get('custom_hooks', []), dict(
                type='EarlyStoppingHook', monitor=self.metric,
                patience=self.patience, rule='greater')]
        return cfg

    def _train(self, candidate: dict, seed: int) -> float:
        """Trains one candidate with one seed; returns the metric."""
        cfg = self._child_cfg(candidate, seed)
        self.logger.info(
            f'training candidate {candidate["index"]} seed {seed} '
            f'({candidate["flops"] / 1e6:.2f}M FLOPs, '
            f'{candidate["params"] / 1e6:.3f}M params, widths '
            f'{candidate["channels"]}) in {cfg.work_dir}')
        return train_child(cfg, self.metric, self.isolate)

    # ----------------------------------------------------------- outputs
    def _write_results(self, state: dict) -> str:
        ranked = self._ranked(state)
        n = len(ranked)
        top_n = max(1, round(self.top_fraction * n))
        slope, intercept = fit_line([c['channels'] for c in ranked[:top_n]])
        state['summary'] = dict(top_count=top_n, fit_slope=slope,
                                fit_intercept=intercept,
                                best=ranked[0]['index'])
        self.logger.info(
            f'linear rule of the top {top_n} of {n} candidates: channels '
            f'= {slope:.3f} * block index + {intercept:.2f}')
        best = ranked[0]
        path = self._path('best.yaml')
        self._save_state(state)
        if not dist.is_main_process():
            return path
        atomic_write_text(self._path('candidates.csv'),
                          self._csv(state, ranked))
        save_channel_cfg(self._best(best, slope, intercept, top_n), path)
        middle = ranked[int(0.5 * n):max(int(0.6 * n), int(0.5 * n) + 1)]
        plot_channel_curves({
            f'top {self.top_fraction:.0%}': [c['channels']
                                            for c in ranked[:top_n]],
            'middle 50-60%': [c['channels'] for c in middle],
            f'bottom {self.top_fraction:.0%}': [c['channels']
                                               for c in ranked[-top_n:]],
        }, self._path('channel_curves.png'))
        self.logger.info(
            f'best candidate {best["index"]}: {self.metric} '
            f'{best["mean"]:.2f} (+- {best["std"]:.2f}), widths '
            f'{best["channels"]}; written to {path}')
        return path

    def _ranked(self, state: dict) -> list[dict]:
        """Candidates with per-seed results, mean and std, best first."""
        ranked = []
        for cand in state['candidates']:
            values = [state['results'][_key(cand['index'], s)]
                      for s in state['seeds']]
            ranked.append(dict(cand, accuracies=values,
                               mean=statistics.fmean(values),
                               std=statistics.pstdev(values)))
        return sorted(ranked, key=lambda c: -c['mean'])

    def _csv(self, state: dict, ranked: list[dict]) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator='\n')
        writer.writerow(['rank', 'index', 'kind', 'a', 'b', 'knots',
                         'channels', 'flops', 'params',
                         *(f'{self.metric}_seed{s}' for s in state['seeds']),
                         f'{self.metric}_mean', f'{self.metric}_std'])
        for rank, c in enumerate(ranked, 1):
            writer.writerow([
                rank, c['index'], c['kind'], f'{c["a"]:.3f}',
                f'{c["b"]:.3f}',
                ' '.join(f'{i:g}:{v:.4f}' for i, v in c['knots']),
                ' '.join(map(str, c['channels'])), int(c['flops']),
                int(c['params']), *(f'{v:.4f}' for v in c['accuracies']),
                f'{c["mean"]:.4f}', f'{c["std"]:.4f}'])
        return buffer.getvalue()

    def _best(self, best: dict, slope: float, intercept: float,
              top_n: int) -> ChannelConfig:
        """The best candidate as a channel_cfg: its block widths under
        ``blocks:`` (``backbone.stages.<s>.<j>`` -> width), the groups of
        that network at full width under ``channels:``, the search's
        figures in meta."""
        channels = [int(c) for c in best['channels']]
        names = block_names(self.stage_blocks)
        meta = dict(
            model=self.model_name, input_shape=list(self.budget.input_shape),
            flops=best['flops'], params=best['params'],
            source=f'ReXNet search, candidate {best["index"]} (best '
            f'{self.metric})',
            stage_blocks=list(self.stage_blocks),
            metric=self.metric, accuracy_mean=best['mean'],
            accuracy_std=best['std'], accuracies=best['accuracies'],
            parameters=dict(kind=best['kind'], a=best['a'], b=best['b'],
                            knots=best['knots']),
            linear_fit=dict(top_count=top_n, slope=slope,
                            intercept=intercept))
        return ChannelConfig(
            self.budget.channel_groups(channels), meta,
            {f'backbone.{n}': c for n, c in zip(names, channels)})


def _key(index: int, seed: int) -> str:
    return f'{index}/{seed}'
