"""FLOPs Utilization Ratio (FUR) of channel groups (Network Adjustment).

FUR_g = (dAcc / dc_g) / (dFLOPs / dc_g): how much accuracy a group's
channels buy per FLOP they cost. The accuracy derivative is estimated by
channel-wise dropout of the group on held-out batches, and the increase of
the loss (or drop of top-1) is divided by the expected number of dropped
channels. The FLOPs derivative is the analytic estimator's.

Where the group's channels are dropped (``drop_at``):

* ``'outputs'`` (the paper's protocol): at the output of every layer that
  writes the group (:func:`group_outputs`: the batch norm after a producing
  conv, else the conv), each with its own random mask. A group inside a
  residual branch (conv1 of a BasicBlock, whose width is its own group) is
  dropped where the layer's output leaves it; a residual-stream group is
  dropped at the branch outputs (and the stem), before the additions, so
  the identity path still carries the channel, as the paper's per-layer
  dropout does.
* ``'readers'``: at the input of every conv / linear layer that reads the
  group, all with the same mask, so a residual channel disappears
  everywhere at once.

The same output sites carry :class:`TrainingDropout`, the paper's channel
dropout regulariser during each round's training.

Everything computed before the first layer that reads a group is the same
with and without its dropout, so those modules' outputs are cached in the
undisturbed pass of every batch and replayed in the dropout passes.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from itertools import product

import torch
import torch.nn.functional as F
from mmengine import dist
from torch import nn

from ..analysis import ChannelAnalysis, refuse_channel_parts
from ..channel_masks import (
    ForwardHooks,
    GroupMasks,
    MaskHooks,
    group_readers,
)
from ..errors import ConfigError
from ..layer_kinds import LAYER_KINDS
from ..mutator import ChannelMutator

DROPOUT_KINDS = ('bernoulli', 'gaussian')
METRICS = ('loss', 'accuracy')
DROP_SITES = ('outputs', 'readers')


@dataclass(frozen=True)
class ChannelDropout:
    """How a group's channels are dropped to measure its utilization.

    Attributes:
        kind: 'bernoulli' (channels zeroed with probability p, the rest
            scaled by 1/(1-p)) or 'gaussian' (every channel multiplied by
            N(1, p/(1-p)) noise).
        rate: dropout probability p.
        scale_by_flops: give every group the rate that drops the same
            expected FLOPs: p_g = rate * mean_flops / flops_g (clipped to
            ``max_rate``), so big layers are probed gently.
        max_rate: upper bound of a scaled rate.
        repeats: dropout passes per batch and group, averaged.
    """
    kind: str = 'bernoulli'
    rate: float = 0.1
    scale_by_flops: bool = True
    max_rate: float = 0.5
    repeats: int = 4

    def __post_init__(self) -> None:
        if self.kind not in DROPOUT_KINDS:
            raise ConfigError(f'dropout kind {self.kind!r} is unknown; use '
                              f'one of {DROPOUT_KINDS}.')
        if not (0 < self.rate < 1 and 0 < self.max_rate < 1):
            raise ConfigError(f'dropout rate and max_rate must be in (0, 1), '
                              f'got {self.rate} and {self.max_rate}.')
        if not (isinstance(self.repeats, int) and self.repeats >= 1):
            raise ConfigError(f'dropout repeats must be an integer >= 1, got '
                              f'{self.repeats!r}.')

    def mask(self, rate: float, shape: tuple[int, int],
             generator: torch.Generator) -> torch.Tensor:
        """A (batch, channels) multiplicative mask."""
        if self.kind == 'bernoulli':
            keep = torch.rand(shape, generator=generator) >= rate
            return keep.float() / (1 - rate)
        noise = torch.randn(shape, generator=generator)
        return 1 + math.sqrt(rate / (1 - rate)) * noise


def group_outputs(analysis: ChannelAnalysis, group: str) -> list[str]:
    """Where a group's channels leave the layers that write them.

    For every producer of ``group`` (in execution order): the batch norm
    that directly follows it on the same channels, or the producer itself.
    For a residual-stream group these are the stem's and the branches'
    outputs before the additions; for a group inside a branch, its one
    layer's output.

    Args:
        analysis: the model's channel analysis.
        group: a searchable group.

    Returns:
        module names, in execution order.
    """
    refuse_channel_parts(
        analysis, 'FLOPs Utilization Ratio (Network Adjustment)',
        'search this model with AutoSlim, or freeze the concatenated groups '
        '(mutator frozen_groups)', [group])
    names = list(analysis.layers)
    sites = []
    for producer in analysis.groups[group].producers:
        index = names.index(producer)
        after = analysis.layers[names[index + 1]] if index + 1 < len(
            names) else None
        sites.append(after.name if after is not None and after.kind == 'bn'
                     and after.in_group == group else producer)
    return sites


class OutputMasks(MaskHooks):
    """Per-sample masks on the outputs of a group's writers
    (:func:`group_outputs`), one independent mask per site: set
    ``masks[group]`` to a list of (N, C) tensors, one per
    ``sites[group]``, or None. As a context manager, the hooks are removed
    at its end.

    Args:
        model: the analyzed model (the mutator's).
        analysis: its channel analysis.
        groups: the groups that can be masked.
    """

    def __init__(self, model: nn.Module, analysis: ChannelAnalysis,
                 groups: Sequence[str]) -> None:
        self.sites = {g: group_outputs(analysis, g) for g in groups}
        self.masks: dict[str, list[torch.Tensor] | None] = dict.fromkeys(
            groups)
        self._handles = [
            model.get_submodule(name).register_forward_hook(
                self._hook(group, i, analysis.layers[name].kind))
            for group, names in self.sites.items()
            for i, name in enumerate(names)]

    def _hook(self, group: str, index: int, kind: str):
        def hook(_, __, output):
            masks = self.masks[group]
            if masks is None:
                return None
            return LAYER_KINDS[kind].mask(output, masks[index])
        return hook


class TrainingDropout(ForwardHooks):
    """Channel dropout as a regulariser while a network trains (the
    paper's protocol): in training mode, the output of every writer of a
    searchable group (:func:`group_outputs`) has each sample's channels
    zeroed with probability p and the rest scaled by 1/(1 - p); in eval
    mode nothing changes.

    As in the authors' code, p can ramp up linearly with the training
    progress (here per iteration: p * i / n at iteration i of n) and with
    the site's place in the network (p * (k + 1) / L for the k-th of L
    sites). The masks of an iteration are seeded by (``seed``, rank,
    iteration, site), so a training resumed from a checkpoint draws the
    same masks as an uninterrupted one.

    Args:
        model: the analyzed model (the mutator's).
        analysis: its channel analysis.
        groups: the groups whose writers are dropped.
        rate: the largest dropout probability p, in [0, 1).
        ramp_progress: scale p by the training progress.
        ramp_layers: scale p by the site's place in the network.
        clock: returns (iterations done, total iterations).
        seed: seeds the masks.
    """

    def __init__(self, model: nn.Module, analysis: ChannelAnalysis,
                 groups: Sequence[str], rate: float,
                 ramp_progress: bool = True, ramp_layers: bool = True,
                 clock: Callable[[], tuple[int, int]] = lambda: (1, 1),
                 seed: int = 0) -> None:
        if not 0 <= rate < 1:
            raise ConfigError(f'training dropout rate must be in [0, 1), '
                              f'got {rate!r}.')
        order = list(analysis.layers)
        sites = sorted({name for g in groups
                        for name in group_outputs(analysis, g)},
                       key=order.index)
        self.clock, self.seed = clock, seed
        self.ramp_progress = ramp_progress
        self.rates = {name: rate * ((k + 1) / len(sites) if ramp_layers
                                    else 1.0)
                      for k, name in enumerate(sites)}
        self._generator = torch.Generator()
        self._handles = [] if rate == 0 else [
            model.get_submodule(name).register_forward_hook(
                self._hook(name, k, analysis.layers[name].kind))
            for k, name in enumerate(sites)]

    def site_rate(self, name: str) -> float:
        """The dropout probability of site ``name`` now."""
        done, total = self.clock()
        scale = min(max(done / max(total, 1), 0.0), 1.0) \
            if self.ramp_progress else 1.0
        return self.rates[name] * scale

    def _hook(self, name: str, index: int, kind: str):
        def hook(module, _, output):
            if not module.training:
                return None
            rate = self.site_rate(name)
            if rate <= 0:
                return None
            channels = LAYER_KINDS[kind].channels(output)
            self._generator.manual_seed(
                self.seed + 1000003 * dist.get_rank()
                + 7919 * self.clock()[0] + index)
            keep = torch.rand(output.shape[0], channels,
                              generator=self._generator) >= rate
            return LAYER_KINDS[kind].mask(output, keep.float() / (1 - rate))
        return hook


def group_flops(mutator: ChannelMutator, widths: Mapping[str, int]
                ) -> tuple[dict[str, float], dict[str, float]]:
    """FLOPs per channel and FLOPs of each searchable group at ``widths``.

    Returns:
        (dFLOPs/dc_g, c_g * dFLOPs/dc_g) per group, from the estimator.
    """
    total = mutator.estimate(widths)['flops']
    per_channel, share = {}, {}
    for group in mutator.searchable_groups:
        fewer = mutator.estimate({**widths, group: widths[group] - 1})
        per_channel[group] = total - fewer['flops']
        share[group] = per_channel[group] * widths[group]
    return per_channel, share


def dropout_rates(dropout: ChannelDropout,
                  flops: Mapping[str, float]) -> dict[str, float]:
    """The dropout rate of every group (see ``scale_by_flops``)."""
    if not dropout.scale_by_flops:
        return {g: dropout.rate for g in flops}
    mean = sum(flops.values()) / len(flops)
    return {g: min(dropout.max_rate, dropout.rate * mean / max(f, 1.0))
            for g, f in flops.items()}


def _clone(value):
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, (tuple, list)):
        return type(value)(_clone(v) for v in value)
    return value


class PrefixCache:
    """Replays the outputs of modules that run before a given point.

    The first :meth:`record` learns the call order of the model's modules;
    afterwards :meth:`record` caches, for one batch, the outputs of the
    modules :meth:`replay` will need. Inside ``replay(start)`` every module
    whose calls all finished before call number ``start`` returns its cached
    output instead of running.

    Args:
        model: the module whose submodules are cached.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.modules = dict(model.named_modules())
        self.modules.pop('')
        self.starts: dict[str, list[int]] = {}
        self.ends: dict[str, list[int]] = {}
        self.cached_names: set[str] = set()
        self.outputs: dict[str, list] = {}

    def start_of(self, name: str) -> int:
        """Call number of the first call of module ``name``."""
        return self.starts[name][0]

    @contextmanager
    def record(self) -> Iterator[None]:
        """Records call order (first time) and caches outputs."""
        learning = not self.starts
        counter, handles = [0], []
        self.outputs = {name: [] for name in self.cached_names}

        def pre_hook(name):
            def hook(*_):
                self.starts.setdefault(name, []).append(counter[0])
                counter[0] += 1
            return hook

        def post_hook(name):
            def hook(_, __, output):
                if learning:
                    self.ends.setdefault(name, []).append(counter[0])
                    counter[0] += 1
                if name in self.outputs:
                    self.outputs[name].append(output)
            return hook

        for name, module in self.modules.items():
            if learning:
                handles.append(module.register_forward_pre_hook(
                    pre_hook(name)))
            if learning or name in self.cached_names:
                handles.append(module.register_forward_hook(post_hook(name)))
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def replayable(self, start: int) -> list[str]:
        """The outermost modules whose calls all end before ``start``."""
        done = {name for name, ends in self.ends.items() if ends[-1] < start}
        return [name for name in done
                if name.rpartition('.')[0] not in done]

    def plan(self, starts: Sequence[int]) -> None:
        """Caches, from the next :meth:`record`, what ``starts`` need."""
        self.cached_names = {n for s in starts for n in self.replayable(s)}

    @contextmanager
    def replay(self, start: int) -> Iterator[None]:
        """Modules finished before ``start`` return their cached outputs."""
        names = self.replayable(start)
        for name in names:
            calls = iter(self.outputs[name])
            self.modules[name].forward = \
                lambda *_, calls=calls, **__: _clone(next(calls))
        try:
            yield
        finally:
            for name in names:
                del self.modules[name].forward


@dataclass
class UtilizationResult:
    """What one FUR measurement found.

    Attributes:
        accuracy: top-1 (%) without dropout.
        loss: cross-entropy without dropout.
        damage: group -> mean loss increase or top-1 drop under dropout.
        passes: cost in validation passes: FLOPs computed, over the FLOPs
            of one undisturbed pass.
        naive_passes: the cost without prefix reuse (1 + groups * repeats).
    """
    accuracy: float
    loss: float
    damage: dict[str, float]
    passes: float
    naive_passes: int


class UtilizationMeter:
    """Measures how much dropping each group's channels hurts.

    Args:
        model: the supernet (its ``architecture`` runs, its
            ``data_preprocessor`` prepares batches), at the widths to probe.
        mutator: its mutator.
        dropout: the channel dropout.
        metric: 'loss' (increase of cross-entropy) or 'accuracy' (drop of
            top-1, %).
        reuse_prefix: replay modules that run before a group's first
            dropped layer instead of recomputing them.
        seed: seeds the dropout masks.
        drop_at: 'readers' (the inputs of the group's readers, one mask)
            or 'outputs' (the outputs of its writers, one mask each).
    """

    def __init__(self, model: nn.Module, mutator: ChannelMutator,
                 dropout: ChannelDropout, metric: str = 'loss',
                 reuse_prefix: bool = True, seed: int = 0,
                 drop_at: str = 'readers') -> None:
        if metric not in METRICS:
            raise ConfigError(f'FUR metric {metric!r} is unknown; use one of '
                              f'{METRICS}.')
        if drop_at not in DROP_SITES:
            raise ConfigError(f'FUR drop_at {drop_at!r} is unknown; use one '
                              f'of {DROP_SITES}.')
        self.model, self.mutator = model, mutator
        self.dropout, self.metric = dropout, metric
        self.reuse_prefix, self.seed = reuse_prefix, seed
        self.drop_at = drop_at

    def _scores(self, logits: torch.Tensor, labels: torch.Tensor
                ) -> torch.Tensor:
        return torch.tensor([
            float((logits.argmax(-1) == labels).sum()),
            float(F.cross_entropy(logits, labels, reduction='sum'))],
            dtype=torch.float64)

    def _first_dropped(self, cache: PrefixCache, groups: Sequence[str]
                       ) -> dict[str, int]:
        """Call number of the first module each group's dropout touches."""
        analysis = self.mutator.analysis
        return {group: min(cache.start_of(name) for name in (
            [n for n, _ in group_readers(analysis, group)]
            if self.drop_at == 'readers'
            else group_outputs(analysis, group))) for group in groups}

    @torch.no_grad()
    def measure(self, batches: Sequence[dict], groups: Sequence[str],
                rates: Mapping[str, float]) -> UtilizationResult:
        """Damage of dropping each group's channels on ``batches``.

        Args:
            batches: raw dataloader batches (preprocessed here).
            groups: the groups to probe.
            rates: dropout rate per group.
        """
        arch = self.model.architecture
        widths = self.mutator.current_choices()
        rank, world = dist.get_rank(), dist.get_world_size()
        generator = torch.Generator()
        base = torch.zeros(3, dtype=torch.float64)
        dropped = {g: torch.zeros(2, dtype=torch.float64) for g in groups}
        cache = PrefixCache(arch)
        first: dict[str, int] = {}
        masking = GroupMasks if self.drop_at == 'readers' else OutputMasks
        with masking(arch, self.mutator.analysis, groups) as masks:
            for i, batch in enumerate(batches):
                # the masks of a batch follow its place in the one-process
                # order (held_out_batches deals batch r + i * W to rank r),
                # so FURs do not depend on the number of processes
                generator.manual_seed(self.seed + 1000003 * (rank + i * world))
                data = self.model.data_preprocessor(batch, False)
                inputs = data['inputs']
                labels = torch.cat([s.gt_label for s in data['data_samples']])
                with cache.record():
                    logits = arch(inputs, mode='tensor')
                labels = labels.to(logits.device)
                base += torch.cat([self._scores(logits, labels),
                                   torch.tensor([labels.numel()],
                                                dtype=torch.float64)])
                if not first:
                    first = self._first_dropped(cache, groups)
                    if self.reuse_prefix:
                        cache.plan(list(first.values()))
                        with cache.record():  # now with the outputs cached
                            arch(inputs, mode='tensor')
                for group, _ in product(groups, range(self.dropout.repeats)):
                    masks.clear()
                    shape = (len(labels), widths[group])
                    masks.masks[group] = self.dropout.mask(
                        rates[group], shape, generator) \
                        if self.drop_at == 'readers' else [
                            self.dropout.mask(rates[group], shape, generator)
                            for _ in masks.sites[group]]
                    with (cache.replay(first[group]) if self.reuse_prefix
                          else nullcontext()):
                        logits = arch(inputs, mode='tensor')
                    dropped[group] += self._scores(logits, labels)
                masks.clear()
        dist.all_reduce(base)
        for group in groups:
            dist.all_reduce(dropped[group])
        correct, loss, count = base.tolist()
        accuracy, loss = 100.0 * correct / count, loss / count
        damage = {}
        for group in groups:
            repeats = self.dropout.repeats * count
            drop_correct, drop_loss = dropped[group].tolist()
            damage[group] = drop_loss / repeats - loss \
                if self.metric == 'loss' \
                else accuracy - 100.0 * drop_correct / repeats
        return UtilizationResult(accuracy, loss, damage,
                                 self._passes(cache, first, len(batches)),
                                 1 + len(groups) * self.dropout.repeats)

    def _passes(self, cache: PrefixCache, first: Mapping[str, int],
                num_batches: int) -> float:
        """Validation passes the measurement cost, counted in FLOPs."""
        if not self.reuse_prefix:
            return 1 + len(first) * self.dropout.repeats
        flops = self.mutator.estimator.layer_flops(
            self.mutator.current_choices())
        total = sum(flops.values())
        passes = 1 + 1 / num_batches  # the caching pass of the first batch
        for start in first.values():
            replayed = cache.replayable(start)
            skipped = sum(f for layer, f in flops.items() if any(
                layer == m or layer.startswith(m + '.') for m in replayed))
            passes += self.dropout.repeats * (1 - skipped / total)
        return passes

def flops_utilization(damage: Mapping[str, float],
                      rates: Mapping[str, float],
                      widths: Mapping[str, int],
                      flops_per_channel: Mapping[str, float]
                      ) -> dict[str, float]:
    """FUR per group: damage per expected dropped channel, per FLOP.

    Scaled by 1e6 (damage per channel per MFLOP) so values read well.
    """
    return {g: 1e6 * damage[g] / (rates[g] * widths[g])
            / max(flops_per_channel[g], 1.0) for g in damage}
