"""FLOPs Utilization Ratio (FUR) of channel groups (Network Adjustment).

FUR_g = (dAcc / dc_g) / (dFLOPs / dc_g): how much accuracy a group's
channels buy per FLOP they cost. The accuracy derivative is estimated by
channel-wise dropout of the group on held-out batches: every conv / linear
layer that reads the group sees a random channel mask on its input (the same
mask for all of them, so a residual channel disappears everywhere at once),
and the increase of the loss (or drop of top-1) is divided by the expected
number of dropped channels. The FLOPs derivative is the analytic
estimator's.

Everything computed before the first layer that reads a group is the same
with and without its dropout, so those modules' outputs are cached in the
undisturbed pass of every batch and replayed in the dropout passes.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from itertools import product

import torch
import torch.nn.functional as F
from mmengine import dist
from torch import nn

from ..channel_masks import GroupMasks, group_readers
from ..errors import ConfigError
from ..mutator import ChannelMutator

DROPOUT_KINDS = ('bernoulli', 'gaussian')
METRICS = ('loss', 'accuracy')


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
        reuse_prefix: replay modules that run before a group's first reader
            instead of recomputing them.
        seed: seeds the dropout masks.
    """

    def __init__(self, model: nn.Module, mutator: ChannelMutator,
                 dropout: ChannelDropout, metric: str = 'loss',
                 reuse_prefix: bool = True, seed: int = 0) -> None:
        if metric not in METRICS:
            raise ConfigError(f'FUR metric {metric!r} is unknown; use one of '
                              f'{METRICS}.')
        self.model, self.mutator = model, mutator
        self.dropout, self.metric = dropout, metric
        self.reuse_prefix, self.seed = reuse_prefix, seed

    def _scores(self, logits: torch.Tensor, labels: torch.Tensor
                ) -> torch.Tensor:
        return torch.tensor([
            float((logits.argmax(-1) == labels).sum()),
            float(F.cross_entropy(logits, labels, reduction='sum'))],
            dtype=torch.float64)

    def _first_readers(self, cache: PrefixCache, groups: Sequence[str]
                       ) -> dict[str, int]:
        return {group: min(cache.start_of(name) for name, _ in
                           group_readers(self.mutator.analysis, group))
                for group in groups}

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
        with GroupMasks(arch, self.mutator.analysis, groups) as masks:
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
                    first = self._first_readers(cache, groups)
                    if self.reuse_prefix:
                        cache.plan(list(first.values()))
                        with cache.record():  # now with the outputs cached
                            arch(inputs, mode='tensor')
                for group, _ in product(groups, range(self.dropout.repeats)):
                    masks.clear()
                    masks.masks[group] = self.dropout.mask(
                        rates[group], (len(labels), widths[group]), generator)
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
