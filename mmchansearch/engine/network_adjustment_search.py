"""Network Adjustment (Chen et al., CVPR 2020) as an mmengine loop.

Each round trains the current network (a child Runner in
``WORK_DIR/round_<r>``), measures every channel group's FLOPs Utilization
Ratio on held-out batches, widens the groups with the highest FUR and
narrows those with the lowest, and rescales the widths so the FLOPs stay at
the starting budget. The last round's adjusted widths are the result, ready
for retraining. Two protocols (``protocol``):

* ``'paper'`` (the paper's and its authors' code's): every round trains the
  adjusted network from scratch with channel dropout (rate 0.05) as a
  regulariser; FURs drop the channels at the outputs of the layers that
  write a group (inside the residual branches, not the whole stream); a
  changed group moves by ``step`` times its starting width (+-0.1 c_init);
  then every group is rescaled by one factor to the FLOPs budget; a
  "searched xS" network is the adjustment of the uniform xS network itself
  (a second search in ``WORK_DIR/x<S>``).
* ``'finetune'`` (this toolbox's first protocol): every round fine-tunes
  the previous round's weights, no training dropout; FURs drop a group's
  channels at the inputs of all its readers; a changed group moves by
  ``step`` times its current width; the unchanged groups absorb the FLOPs
  change; "searched xS" rescales the result to the uniform xS FLOPs.
"""
from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence

from mmengine import dist
from mmengine.logging import MMLogger
from mmengine.runner import BaseLoop, Runner, find_latest_checkpoint

from ..channel_cfg import save_channel_cfg
from ..distributed import check_finite, run_on_main, unwrap
from ..errors import BudgetError, ConfigError
from ..fileio import (
    atomic_torch_save,
    atomic_write_text,
    file_digest,
    load_checkpoint_file,
)
from ..mutator import ChannelMutator
from ..registry import LOOPS
from ..supernet import load_supernet_weights
from ..visualization import plot_channel_adjustment
from .child_training import child_config
from .flops_utilization import (
    ChannelDropout,
    TrainingDropout,
    UtilizationMeter,
    dropout_rates,
    flops_utilization,
    group_flops,
)
from .held_out import held_out_batches
from .search_state import (
    CONFIG_SECTIONS,
    SearchState,
    search_dependencies,
)

STATE_FILE = 'adjustment_state.json'

# What each protocol sets (see the module docstring); ``fine_tune``, the
# training dropout and the FUR dropout rate can be overridden one by one.
PROTOCOLS = {
    'paper': dict(fine_tune=False, train_dropout=dict(rate=0.05),
                  fur_rate=0.05, drop_at='outputs', step_from='start',
                  rescale_all=True, adjust_scaled=True),
    'finetune': dict(fine_tune=True, train_dropout=dict(rate=0.0),
                     fur_rate=0.1, drop_at='readers', step_from='current',
                     rescale_all=False, adjust_scaled=False),
}


def scaled_variant(mutator: ChannelMutator, choices: Mapping[str, int],
                   reference: Mapping[str, int], scale: float,
                   tolerance: float = 0.01
                   ) -> tuple[dict[str, int], dict[str, int]]:
    """The paper's "searched 0.8x": ``choices`` fitted to the FLOPs of
    ``reference`` with every searchable group scaled by ``scale``.

    Returns:
        (the rescaled choices, the uniformly scaled reference).
    """
    if not 0 < scale <= 1:
        raise ConfigError(f'scale must be in (0, 1], got {scale}.')
    uniform = {**reference, **{g: mutator.round_width(g, reference[g] * scale)
                               for g in mutator.searchable_groups}}
    budget = mutator.estimate(uniform)['flops']
    return mutator.fit_budget(choices, 'flops', budget,
                              tolerance=tolerance), uniform


def adjust_widths(mutator: ChannelMutator, choices: Mapping[str, int],
                  fur: Mapping[str, float], budget: float, num_changed: int,
                  step: float, tolerance: float = 0.01,
                  base: Mapping[str, int] | None = None,
                  rescale_all: bool = False
                  ) -> tuple[list[str], list[str], dict[str, int]]:
    """One Network Adjustment step: widens the ``num_changed`` groups of
    highest FUR and narrows those of lowest FUR by ``step`` times their
    ``base`` width (at least one divisor step), then refits the FLOPs
    budget.

    Groups at their cap are not widened and groups at their smallest width
    not narrowed; the next ones in FUR order are taken instead.

    Args:
        mutator: the mutator of the groups.
        choices: the current widths.
        fur: FUR per searchable group.
        budget: the FLOPs to keep.
        num_changed: groups widened and groups narrowed.
        step: the adjusting rate.
        tolerance: allowed relative FLOPs distance to the budget.
        base: the widths the step is a fraction of (the paper: the starting
            widths c_init); None: the current widths.
        rescale_all: refit the budget by scaling every group by one factor
            (the paper); False: only the unchanged groups (all groups, when
            those alone cannot).

    Returns:
        (widened groups, narrowed groups, adjusted widths).
    """
    order = sorted(fur, key=fur.get, reverse=True)

    def moved(group: str, sign: int) -> int:
        scaled = mutator.round_width(
            group, choices[group] * (1 + sign * step) if base is None
            else choices[group] + sign * step * base[group])
        stepped = mutator.step_widths(choices, group, sign)[group]
        return max(scaled, stepped) if sign > 0 else min(scaled, stepped)

    widened = [g for g in order if moved(g, 1) > choices[g]][:num_changed]
    narrowed = [g for g in reversed(order) if g not in widened
                and moved(g, -1) < choices[g]][:num_changed]
    new = {**choices, **{g: moved(g, 1) for g in widened},
           **{g: moved(g, -1) for g in narrowed}}
    if rescale_all:
        return widened, narrowed, mutator.fit_budget(
            new, 'flops', budget, tolerance=tolerance)
    try:
        new = mutator.fit_budget(new, 'flops', budget,
                                 keep=widened + narrowed, tolerance=tolerance)
    except BudgetError:  # the other groups alone cannot absorb the change
        new = mutator.fit_budget(new, 'flops', budget, tolerance=tolerance)
    return widened, narrowed, new


@LOOPS.register_module()
class NetworkAdjustmentSearchLoop(BaseLoop):
    """Network Adjustment: T rounds of train, measure FUR, adjust.

    Args:
        runner: the Runner of the search config; its model (a
            ``ChannelSupernet`` whose mutator has ``width_cap`` > 1 so
            groups can grow) defines the groups, and its config trains each
            round (``train_cfg.max_epochs`` epochs per round).
        dataloader: held-out data the FURs are measured on.
        protocol: 'paper' (the default) or 'finetune'; see the module
            docstring and ``PROTOCOLS``.
        rounds: number of adjustment rounds T.
        num_changed: groups widened and groups narrowed per round.
        step: adjusting rate: a changed group's width moves by ``step``
            times its starting width ('paper') or its current width
            ('finetune'), at least one divisor step.
        dropout: :class:`ChannelDropout` settings of the FUR measurement
            (kind, rate, scale_by_flops, max_rate, repeats); the rate
            defaults to the protocol's (0.05 'paper', 0.1 'finetune').
        train_dropout: :class:`TrainingDropout` settings while a round
            trains (rate, ramp_progress, ramp_layers); the protocol's by
            default (rate 0.05 'paper', 0 = none 'finetune').
        metric: what the dropout damages: 'loss' or 'accuracy'.
        num_batches: held-out batches per FUR measurement (None: all).
        fine_tune: each round starts from the previous round's weights
            (new channels freshly initialized); False trains from scratch.
            None: the protocol's (False 'paper', True 'finetune').
        budget: FLOPs to keep; default the original network's. Otherwise
            the original widths are first rescaled to it.
        tolerance: allowed relative FLOPs distance to the budget.
        scales: also write "searched xS" variants of the result and the
            uniform networks (the original widths scaled by S), e.g.
            ``[0.8]``: 'paper' adjusts the uniform xS network itself (the
            same rounds in ``WORK_DIR/x<S>``), 'finetune' rescales the
            result to the uniform xS FLOPs.
        reuse_prefix: replay what runs before a dropped group instead of
            recomputing it while measuring FURs.
        seed: seeds the dropout masks.
        checkpoint: pretrained weights of the original network (or a
            supernet checkpoint) that round 1 fine-tunes; needs
            ``fine_tune``.
        resume: continue from the state in the work dir (and a killed
            round's latest checkpoint).
        force: start over although the work dir holds a search state.
        model_name: written into the results' meta.
    """

    def __init__(self,
                 runner,
                 dataloader,
                 protocol: str = 'paper',
                 rounds: int = 10,
                 num_changed: int = 2,
                 step: float = 0.1,
                 dropout: dict | None = None,
                 train_dropout: dict | None = None,
                 metric: str = 'loss',
                 num_batches: int | None = None,
                 fine_tune: bool | None = None,
                 budget: float | None = None,
                 tolerance: float = 0.01,
                 scales: Sequence[float] = (),
                 reuse_prefix: bool = True,
                 seed: int = 0,
                 checkpoint: str | None = None,
                 resume: bool = False,
                 force: bool = False,
                 model_name: str = '') -> None:
        super().__init__(runner, dataloader)
        self.mutator: ChannelMutator = unwrap(runner.model).mutator
        groups = len(self.mutator.searchable_groups)
        if protocol not in PROTOCOLS:
            raise ConfigError(f'search_loop.protocol {protocol!r} is '
                              f'unknown; use one of {tuple(PROTOCOLS)}.')
        if not (isinstance(rounds, int) and rounds >= 1):
            raise ConfigError(f'search_loop.rounds must be an integer >= 1, '
                              f'got {rounds!r}.')
        if not (isinstance(num_changed, int)
                and 1 <= num_changed <= groups // 2):
            raise ConfigError(
                f'search_loop.num_changed must be an integer in [1, '
                f'{groups // 2}] (half of the {groups} searchable groups), '
                f'got {num_changed!r}.')
        if not 0 < step < 1:
            raise ConfigError(f'search_loop.step (adjusting rate) must be '
                              f'in (0, 1), got {step!r}.')
        settings = PROTOCOLS[protocol]
        fine_tune = settings['fine_tune'] if fine_tune is None else fine_tune
        if checkpoint and not fine_tune:
            raise ConfigError(
                'a pretrained checkpoint needs search_loop.fine_tune=True '
                f'(protocol {protocol!r} trains every round from scratch '
                'and would ignore it); set search_loop.fine_tune=True or '
                "protocol='finetune', or drop the checkpoint.")
        self.protocol, self.settings = protocol, settings
        self.rounds, self.num_changed, self.step = rounds, num_changed, step
        self.dropout = ChannelDropout(**{'rate': settings['fur_rate'],
                                         **(dropout or {})})
        self.train_dropout = {**settings['train_dropout'],
                              **(train_dropout or {})}
        unknown = set(self.train_dropout) - {'rate', 'ramp_progress',
                                             'ramp_layers'}
        if unknown or not 0 <= self.train_dropout['rate'] < 1:
            raise ConfigError(
                f'search_loop.train_dropout takes rate (in [0, 1)), '
                f'ramp_progress and ramp_layers; got {self.train_dropout}.')
        self.metric, self.num_batches = metric, num_batches
        self.fine_tune, self.budget = fine_tune, budget
        self.tolerance, self.scales = tolerance, list(scales)
        self.reuse_prefix, self.seed = reuse_prefix, seed
        self.checkpoint = checkpoint
        self.resume, self.force = resume, force
        self.model_name = model_name
        self.logger = MMLogger.get_current_instance()
        self.work_dir = runner.work_dir

    # ------------------------------------------------------------- state
    def _path(self, *parts: str) -> str:
        return os.path.join(self.work_dir, *parts)

    def _initial_state(self, start: Mapping[str, int] | None = None
                       ) -> dict:
        original = dict(self.mutator.original_widths)
        if start is None:
            start = original if self.budget is None else \
                self.mutator.fit_budget(original, 'flops', self.budget,
                                        tolerance=self.tolerance)
        return dict(rounds=self.rounds, done=0, original=original,
                    start=dict(start), choices=dict(start),
                    budget=self.mutator.estimate(start)['flops'],
                    history=[])

    def _state(self, sub: str = '') -> SearchState:
        """The state of the search in ``WORK_DIR/sub``. Its rounds do not
        depend on ``scales`` (each "searched xS" is a search of its own in
        ``x<S>/``, or a rescaling of the result), so a finished search
        resumes with a scale added. A state written while ``scales`` was
        part of the fingerprint is accepted if it was made with this run's
        scales or none."""
        cfg = self.runner.cfg
        loop = dict(cfg.search_loop)
        earlier = [search_dependencies(
            {**{k: cfg.get(k) for k in CONFIG_SECTIONS}, 'search_loop': old},
            self.checkpoint) for old in (loop, dict(loop, scales=[]))]
        return SearchState(
            self._path(sub, STATE_FILE),
            search_dependencies(cfg, self.checkpoint,
                                ignored=('search_loop.scales', )),
            self.resume, self.force, accepted=earlier)

    # --------------------------------------------------------------- run
    def run(self) -> str:
        """Runs (or resumes) every round; returns the result's YAML path."""
        state = self._search('', None)
        scaled = {}
        for scale in self.scales:
            if self.settings['adjust_scaled']:
                uniform = self._uniform(state['start'], scale)
                adjusted = self._search(f'x{scale:g}', uniform,
                                        offset=1000 * (len(scaled) + 1))
                scaled[scale] = (adjusted['choices'], adjusted['start'])
            else:
                scaled[scale] = scaled_variant(
                    self.mutator, state['choices'], state['start'], scale,
                    self.tolerance)
        return self._write_results(state, scaled)

    def _uniform(self, reference: Mapping[str, int], scale: float
                 ) -> dict[str, int]:
        """``reference`` with every searchable group scaled by ``scale``."""
        if not 0 < scale <= 1:
            raise ConfigError(f'scale must be in (0, 1], got {scale}.')
        return {**reference, **{g: self.mutator.round_width(
            g, reference[g] * scale) for g in self.mutator.searchable_groups}}

    def _search(self, sub: str, start: Mapping[str, int] | None,
                offset: int = 0) -> dict:
        """Runs (or resumes) the rounds of one search in ``WORK_DIR/sub``
        from ``start`` (None: the original network at the budget);
        returns its final state."""
        store = self._state(sub)
        state = store.load()
        if state is None:
            state = self._initial_state(start)
            store.save(state)  # a re-run without --resume is refused
        else:
            self.logger.info(f'resuming network adjustment after round '
                             f'{state["done"]} from {store.path}')
        for round_ in range(state['done'] + 1, self.rounds + 1):
            model = self._train_round(round_, state['choices'], sub,
                                      offset)
            record, adjusted = self._adjust(round_, model, state, sub,
                                            offset)
            state['history'].append(record)
            state['choices'], state['done'] = adjusted, round_
            store.save(state)
        if sub and dist.is_main_process():
            atomic_write_text(self._path(sub, 'rounds.csv'),
                              _csv(state['history']))
        return state

    def _start_checkpoint(self) -> str | None:
        """The pretrained weights as a checkpoint of the (grown) supernet,
        written once to ``round_0``; None without a checkpoint."""
        if not self.checkpoint:
            return None
        path = self._path('round_0', 'pretrained_supernet.pth')
        run_on_main(lambda: self._convert_checkpoint(path))
        return path

    def _convert_checkpoint(self, path: str) -> None:
        """Writes the pretrained weights grown to the supernet's widths,
        unless ``path`` already holds this very checkpoint's conversion."""
        digest = file_digest(self.checkpoint)
        if os.path.isfile(path) and (load_checkpoint_file(path).get(
                'meta') or {}).get('source_sha256') == digest:
            return
        model = unwrap(self.runner.model)
        load_supernet_weights(model, self.checkpoint,
                              embed=self.mutator.width_cap > 1)
        atomic_torch_save(dict(state_dict=model.state_dict(),
                               meta=dict(source=self.checkpoint,
                                         source_sha256=digest)), path)

    def _train_round(self, round_: int, choices: Mapping[str, int],
                     sub: str = '', offset: int = 0):
        """Trains ``choices`` with a child Runner; returns the supernet."""
        round_dir = self._path(sub, f'round_{round_}')
        cfg = child_config(self.runner.cfg, round_dir,
                           f'{sub}_round_{round_}' if sub
                           else f'round_{round_}')
        cfg.model.channel_cfg = dict(channels=dict(choices))
        latest = find_latest_checkpoint(round_dir) if self.resume and \
            os.path.isdir(round_dir) else None
        previous = None
        if self.fine_tune:
            previous = (self._start_checkpoint() if not sub else None) \
                if round_ == 1 else find_latest_checkpoint(
                    self._path(sub, f'round_{round_ - 1}'))
        cfg.resume, cfg.load_from = (True, latest) if latest else (
            False, previous)
        seed = (cfg.get('randomness') or {}).get('seed')
        if not self.fine_tune and seed is not None:
            # a fresh initialization every round (round 1: the config's)
            cfg.randomness.seed = seed + offset + round_ - 1
        self.logger.info(
            f'{sub + " " if sub else ""}round {round_}/{self.rounds}: '
            f'training {self._describe(choices)} in {round_dir}'
            + (f', from {previous}' if previous and not latest else
               ', from scratch' if not latest else '')
            + f', channel dropout {self.train_dropout["rate"]:g}')
        runner = Runner.from_cfg(cfg)
        model = unwrap(runner.model)
        settings = dict(self.train_dropout)
        with TrainingDropout(
                model.architecture, model.mutator.analysis,
                model.mutator.searchable_groups, settings.pop('rate'),
                clock=lambda: (runner.iter, runner.max_iters),
                seed=self.seed + offset + round_, **settings):
            runner.train()
        return model

    def _describe(self, choices: Mapping[str, int]) -> str:
        usage = self.mutator.estimate(choices)
        return f'{usage["flops"] / 1e6:.2f}M FLOPs, ' \
            f'{usage["params"] / 1e6:.3f}M params'

    def _adjust(self, round_: int, model, state: dict, sub: str = '',
                offset: int = 0) -> tuple[dict, dict[str, int]]:
        """Measures FURs of the trained ``model``; returns the round's
        record and the adjusted widths."""
        choices = state['choices']
        mutator = model.mutator
        mutator.set_choices(choices)
        model.eval()
        per_channel, group_share = group_flops(mutator, choices)
        rates = dropout_rates(self.dropout, group_share)
        meter = UtilizationMeter(model, mutator, self.dropout, self.metric,
                                 self.reuse_prefix,
                                 self.seed + offset + round_,
                                 drop_at=self.settings['drop_at'])
        batches = held_out_batches(self.dataloader, self.num_batches)
        result = meter.measure(batches, mutator.searchable_groups, rates)
        fur = flops_utilization(result.damage, rates, choices, per_channel)
        round_name = f'{sub} round {round_}' if sub else f'round {round_}'
        round_dir = os.path.join(sub, f'round_{round_}')
        check_finite(
            {'held-out loss': result.loss,
             **{f'FUR of {g}': value for g, value in fur.items()}},
            f'network adjustment {round_name}: FLOPs utilization',
            f'The network trained in {round_name} diverged: lower the '
            'learning rate (optim_wrapper.optimizer.lr) or check the '
            f'pretrained checkpoint, and delete {round_dir} before '
            '--resume (it would reload those weights)')
        paper_step = self.settings['step_from'] == 'start'
        widened, narrowed, adjusted = adjust_widths(
            self.mutator, choices, fur, state['budget'], self.num_changed,
            self.step, self.tolerance,
            base=state['start'] if paper_step else None,
            rescale_all=self.settings['rescale_all'])
        rows = [dict(group=g, width=choices[g], new_width=adjusted[g],
                     change='widen' if g in widened else 'narrow'
                     if g in narrowed else '',
                     flops_per_channel=per_channel[g],
                     flops_share=group_share[g], dropout_rate=rates[g],
                     **{f'{self.metric}_damage': result.damage[g]},
                     fur=fur[g])
                for g in sorted(fur, key=fur.get, reverse=True)]
        usage = self.mutator.estimate(choices)
        record = dict(round=round_, flops=usage['flops'],
                      params=usage['params'],
                      heldout_top1=result.accuracy,
                      heldout_loss=result.loss, widened=widened,
                      narrowed=narrowed, fur_passes=result.passes,
                      naive_passes=result.naive_passes)
        self._write_round(round_, choices, rows, record, sub)
        self.logger.info(
            f'{round_name}: held-out top-1 {result.accuracy:.2f}%, loss '
            f'{result.loss:.4f}; widen {widened}, narrow {narrowed}; '
            f'adjusted: {self._describe(adjusted)}; FURs cost '
            f'{result.passes:.1f} validation passes (naive '
            f'{result.naive_passes})')
        return record, adjusted

    # ----------------------------------------------------------- outputs
    def _save_cfg(self, choices: Mapping[str, int], path: str,
                  source: str, **meta) -> None:
        if dist.is_main_process():
            save_channel_cfg(self.mutator.channel_config(
                choices, self.model_name, source, **meta),
                path, self.mutator.max_widths)

    def _write_round(self, round_: int, choices: Mapping[str, int],
                     rows: list[dict], record: dict, sub: str = '') -> None:
        self._save_cfg(choices, self._path(sub, f'round_{round_}',
                                           'channels.yaml'),
                       f'network adjustment ({self.protocol}), network '
                       f'trained in {sub + " " if sub else ""}round '
                       f'{round_}', heldout_top1=round(
                           record['heldout_top1'], 3))
        if dist.is_main_process():
            atomic_write_text(self._path(sub, f'round_{round_}', 'fur.csv'),
                              _csv(rows))

    def _write_results(self, state: dict, scaled: Mapping[float, tuple]
                       ) -> str:
        final = self._path('final.yaml')
        self._save_cfg(state['choices'], final,
                       f'network adjustment ({self.protocol}), '
                       f'{self.rounds} rounds, FLOPs budget '
                       f'{state["budget"]:g}')
        self._save_cfg(state['start'], self._path('original.yaml'),
                       'network adjustment, starting network')
        for scale, (searched, uniform) in scaled.items():
            self._save_cfg(
                searched, self._path(f'final_x{scale:g}.yaml'),
                f'network adjustment ({self.protocol}) of the uniform '
                f'x{scale:g} network, {self.rounds} rounds'
                if self.settings['adjust_scaled'] else
                f'network adjustment result scaled to the FLOPs of the '
                f'uniform x{scale:g} network')
            self._save_cfg(uniform, self._path(f'uniform_x{scale:g}.yaml'),
                           f'starting network, every group x{scale:g}')
        if dist.is_main_process():
            atomic_write_text(self._path('rounds.csv'),
                              _csv(state['history']))
            plot_channel_adjustment(state['start'], state['choices'],
                                    self._path('adjustment.png'))
        self.logger.info(f'network adjustment done: {final} '
                         f'({self._describe(state["choices"])})')
        return final


def _csv(rows: Sequence[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]),
                            lineterminator='\n')
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ' '.join(v) if isinstance(v, list) else v
                         for k, v in row.items()})
    return buffer.getvalue()
