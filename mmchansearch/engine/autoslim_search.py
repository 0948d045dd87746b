"""AutoSlim's greedy slimming search, as an mmengine loop.

Starting from the widest subnet, every step tries to narrow each channel
group by one candidate step, scores each try on held-out batches, and keeps
the one that costs the least accuracy. Whenever the constrained resource
(FLOPs, params, or any other estimator metric) drops below a target, the
current widths are that target's result, so one pass serves every target.
"""
from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmengine import dist
from mmengine.logging import MMLogger
from mmengine.model import is_model_wrapper
from mmengine.runner import BaseLoop
from rich.progress import BarColumn, Progress, TextColumn

from ..channel_cfg import save_channel_cfg
from ..distributed import check_finite
from ..errors import BudgetError, ConfigError
from ..fileio import atomic_write_text
from ..registry import LOOPS
from ..supernet import load_supernet_weights
from ..visualization import plot_search_trajectory
from .batch_norm import batch_statistics, recalibrate_bn
from .held_out import calibration_batches, held_out_batches
from .search_state import SearchState, search_dependencies

STATE_FILE = 'search_state.json'
HISTORY_FILE = 'search_history.json'
DIVERGED = ('The supernet diverged or its checkpoint holds NaN/inf weights: '
            'check the checkpoint, or retrain the supernet with a lower '
            'learning rate')


def format_budget(metric: str, value: float) -> str:
    """A short label for a budget: 530M (FLOPs/params) or 12.5ms."""
    if metric == 'latency':
        return f'{value:g}ms'
    for scale, unit in ((1e9, 'G'), (1e6, 'M'), (1e3, 'K')):
        if value >= scale:
            return f'{value / scale:.4g}{unit}'
    return f'{value:g}'


@torch.no_grad()
def score_batches(model, batches: Sequence[dict]) -> tuple[float, float]:
    """Top-1 accuracy (%) and mean cross-entropy of ``model`` on batches.

    Batches are raw dataloader batches, preprocessed here, so held-out data
    stays on the CPU in its compact form between evaluations. With several
    ranks, each scores its shard and the counts are summed.
    """
    totals = torch.zeros(3, dtype=torch.float64)
    for batch in batches:
        data = model.data_preprocessor(batch, False)
        logits = model(data['inputs'], mode='tensor')
        labels = torch.cat([s.gt_label for s in data['data_samples']]).to(
            logits.device)
        totals += torch.tensor([
            float((logits.argmax(-1) == labels).sum()),
            float(F.cross_entropy(logits, labels, reduction='sum')),
            labels.numel()], dtype=torch.float64)
    dist.all_reduce(totals)
    correct, loss, count = totals.tolist()
    return 100.0 * correct / count, loss / count


@LOOPS.register_module()
class AutoSlimSearchLoop(BaseLoop):
    """Greedy channel slimming for several budgets in one pass.

    Args:
        runner: the mmengine runner holding the trained supernet.
        dataloader: held-out data (not used for supernet training).
        targets: budgets of the ``constraint`` metric, e.g.
            ``[530e6, 320e6, 220e6]``.
        constraint: estimator metric the targets bound ('flops', 'params'
            or 'latency' when the mutator has a latency table).
        num_batches: held-out batches scoring each try (None: all).
        calibrate_bn_batches: training batches used to recalibrate BN
            before each result's final evaluation (a seeded choice of
            training images, the same on any number of processes).
        checkpoint: the trained supernet's weights (loaded here).
        resume: continue from the state file in the work dir.
        force: start over although the work dir holds a search state.
        model_name: written into each result's meta.

    With several ranks (``tools/search.py --launcher pytorch`` under
    torchrun), each scores its shard of the held-out data and rank 0 writes
    the files.
    """

    def __init__(self,
                 runner,
                 dataloader,
                 targets: Sequence[float],
                 constraint: str = 'flops',
                 num_batches: int | None = None,
                 calibrate_bn_batches: int = 10,
                 checkpoint: str | None = None,
                 resume: bool = False,
                 force: bool = False,
                 model_name: str = '') -> None:
        super().__init__(runner, dataloader)
        if not targets:
            raise ConfigError('search targets is empty; give one or more '
                              f'{constraint} budgets.')
        self.targets = sorted((float(t) for t in targets), reverse=True)
        bad = [t for t in self.targets if not math.isfinite(t) or t <= 0]
        if bad:
            raise ConfigError(f'search target {bad[0]!r} is not a positive '
                              'finite number.')
        labels = [format_budget(constraint, t) for t in self.targets]
        if len(set(labels)) < len(labels):
            raise ConfigError(
                f'search targets {list(targets)} give the same result name '
                f'twice ({labels}); give distinct targets.')
        if calibrate_bn_batches < 1:
            raise ConfigError(
                f'search_loop.calibrate_bn_batches={calibrate_bn_batches}: '
                'BN statistics of each result are recomputed on this many '
                'training batches; give 1 or more (e.g. 10).')
        self.constraint = constraint
        self.num_batches = num_batches
        self.calibrate_bn_batches = calibrate_bn_batches
        self.checkpoint, self.resume, self.force = checkpoint, resume, force
        self.model_name = model_name
        self.algorithm = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        self.mutator = self.algorithm.mutator
        if checkpoint:
            load_supernet_weights(self.algorithm, checkpoint)
        self.logger = MMLogger.get_current_instance()

    # ------------------------------------------------------------ helpers
    def _usage(self, choices: dict[str, int]) -> float:
        usage = self.mutator.estimate(choices)
        if self.constraint not in usage:
            raise ConfigError(
                f'search constraint {self.constraint!r} is not an estimator '
                f'metric; available: {sorted(usage)}.')
        return usage[self.constraint]

    def _check_targets(self) -> None:
        full = self._usage(self.mutator.max_widths)
        for target in self.targets:
            if target >= full:
                self.logger.warning(
                    f'target {format_budget(self.constraint, target)} '
                    f'{self.constraint} is at or above the full network '
                    f'({format_budget(self.constraint, full)}): its result '
                    'is the full network, unslimmed.')
        smallest = {g: self.mutator.candidates(g)[0]
                    for g in self.mutator.widths}
        floor = self._usage(smallest)
        low = [t for t in self.targets if t < floor]
        if low:
            raise BudgetError(
                f'target {format_budget(self.constraint, low[-1])} '
                f'{self.constraint} is below the smallest subnet '
                f'({format_budget(self.constraint, floor)}, every group at '
                'its smallest candidate); raise the target, or lower the '
                "mutator's min_width / width_ratios.")

    def _tries(self, choices: dict[str, int]) -> list[tuple[str, dict]]:
        tries = []
        for group in self.mutator.searchable_groups:
            smaller = [c for c in self.mutator.candidates(group)
                       if c < choices[group]]
            if smaller:
                tries.append((group, {**choices, group: smaller[-1]}))
        return tries

    def _state(self) -> SearchState:
        return SearchState(
            os.path.join(self.runner.work_dir, STATE_FILE),
            search_dependencies(self.runner.cfg, self.checkpoint,
                                targets=self.targets,
                                constraint=self.constraint),
            self.resume, self.force)

    # --------------------------------------------------------------- run
    def run(self) -> dict[str, str]:
        """Runs (or resumes) the search; returns target label -> YAML path."""
        self._check_targets()
        model = self.algorithm
        model.eval()
        batches = held_out_batches(self.dataloader, self.num_batches)
        self._store = store = self._state()
        state = store.load()
        if state is not None:
            self.logger.info(f'resuming the search at step {state["step"]} '
                             f'from {store.path}')
        state = state or dict(
            targets=self.targets, constraint=self.constraint, step=0,
            choices=self.mutator.max_widths, reached={}, history=[])
        if not state['history']:
            with batch_statistics(model):
                model.mutator.set_choices(state['choices'])
                accuracy, loss = score_batches(model, batches)
            check_finite({'held-out loss': loss},
                         'greedy search step 0 (the widest subnet)',
                         DIVERGED)
            state['history'].append(dict(
                step=0, group=None, usage=self._usage(state['choices']),
                accuracy=accuracy, loss=loss, seconds=0.0, eval_seconds=0.0))
        start = self._usage(self.mutator.max_widths)
        with _progress(self.constraint) as progress:
            task = progress.add_task('greedy slimming',
                                     total=start - self.targets[-1],
                                     usage='', accuracy=0.0)
            self._slim(state, batches, progress, task, start)
        return self._write_results(state, batches)

    def _slim(self, state: dict, batches: list, progress, task,
              start: float) -> None:
        model = self.algorithm
        while True:
            usage = self._usage(state['choices'])
            for target in self.targets:
                key = format_budget(self.constraint, target)
                if usage <= target and key not in state['reached']:
                    state['reached'][key] = dict(
                        target=target, choices=dict(state['choices']),
                        step=state['step'])
            self._store.save(state)
            progress.update(task, completed=start - usage,
                            usage=format_budget(self.constraint, usage),
                            accuracy=state['history'][-1]['accuracy'])
            if len(state['reached']) == len(self.targets):
                return
            step_start = time.perf_counter()
            eval_seconds, best, scores = 0.0, None, {}
            with batch_statistics(model):
                for group, choices in self._tries(state['choices']):
                    model.mutator.set_choices(choices)
                    tick = time.perf_counter()
                    accuracy, loss = score_batches(model, batches)
                    eval_seconds += time.perf_counter() - tick
                    scores[f'held-out loss narrowing {group}'] = loss
                    if best is None or (accuracy, -loss) > best[:2]:
                        best = (accuracy, -loss, group, choices)
            check_finite(scores, f'greedy search step {state["step"] + 1}',
                         DIVERGED)
            accuracy, neg_loss, group, choices = best
            state['step'] += 1
            state['history'].append(dict(
                step=state['step'], group=group,
                width=f'{state["choices"][group]}->{choices[group]}',
                usage=self._usage(choices), accuracy=accuracy,
                loss=-neg_loss, seconds=time.perf_counter() - step_start,
                eval_seconds=eval_seconds))
            state['choices'] = choices
            self.logger.info(
                f'step {state["step"]}: {group} '
                f'{state["history"][-1]["width"]}, {self.constraint} '
                f'{format_budget(self.constraint, self._usage(choices))}, '
                f'held-out top-1 {accuracy:.2f}% (batch-stat BN)')

    def _write_results(self, state: dict, batches: list) -> dict[str, str]:
        """Recalibrates BN, evaluates and writes one YAML per target."""
        model, work_dir = self.algorithm, self.runner.work_dir
        paths = {}
        calibration = calibration_batches(self.runner.train_dataloader,
                                          self.calibrate_bn_batches)
        for key, result in state['reached'].items():
            model.mutator.set_choices(result['choices'])
            recalibrate_bn(model, calibration, len(calibration))
            model.eval()
            accuracy, loss = score_batches(model, batches)
            check_finite({'held-out loss': loss}, f'greedy search result '
                         f'{key}, after BN recalibration', DIVERGED)
            usage = model.mutator.estimate(result['choices'])
            extra = {} if self.constraint in ('flops', 'params') else {
                self.constraint: usage[self.constraint]}
            path = os.path.join(work_dir, f'subnet_{self.constraint}-{key}'
                                '.yaml')
            if dist.is_main_process():
                save_channel_cfg(self.mutator.channel_config(
                    result['choices'], self.model_name,
                    f'autoslim greedy search, target {key} '
                    f'{self.constraint}, step {result["step"]}',
                    heldout_top1=round(accuracy, 3), **extra),
                    path, self.mutator.max_widths)
            paths[key] = path
            self.logger.info(
                f'{path}: {self.constraint} '
                f'{format_budget(self.constraint, usage[self.constraint])}, '
                f'held-out top-1 {accuracy:.2f}% (BN recalibrated)')
        if dist.is_main_process():
            atomic_write_text(os.path.join(work_dir, HISTORY_FILE),
                              json.dumps(state['history'], indent=1))
            plot_search_trajectory(
                state['history'], self.targets, self.constraint,
                os.path.join(work_dir, 'search_trajectory.png'))
        return paths


def _progress(metric: str) -> Progress:
    return Progress(
        TextColumn('[progress.description]{task.description}'), BarColumn(),
        TextColumn(f'{metric} {{task.fields[usage]}}'),
        TextColumn('top-1 {task.fields[accuracy]:.2f}%'),
        transient=False)
