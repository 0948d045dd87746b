"""Trains child configs of a search and returns their validation metric.

Searches that train many candidate networks (ReXNet's channel
parameterization search, FBNet's candidates sampled from P_theta) build
each candidate's config (:func:`fresh_child_config`) and train it here
(:func:`train_child`), either in the search's own process or, when the
search runs on several ranks, in a fresh subprocess: a child Runner built
inside a distributed process would join its collectives (timestamp
broadcast, sampler sharding, metric gathering) and deadlock or train on a
fraction of the data, since every rank trains a different candidate.

:func:`train_jobs` deals the jobs out to the ranks, a round of one job per
rank at a time, gathers the results on every rank and hands every round's
to the search, which saves them in its state: a killed search loses at most
the round in progress, and a failure on one rank ends all.

The subprocess runs :func:`main` on a dumped config.
"""
from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

import torch
from mmengine import dist
from mmengine.config import Config
from mmengine.runner import Runner

from ..distributed import check_finite, run_on_every_rank
from ..errors import ConfigError
from ..fileio import atomic_write_text

# Variables through which torchrun tells a process it is one rank of many.
DIST_VARIABLES = ('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'LOCAL_WORLD_SIZE',
                  'MASTER_ADDR', 'MASTER_PORT', 'GROUP_RANK', 'ROLE_RANK',
                  'ROLE_WORLD_SIZE', 'TORCHELASTIC_RUN_ID')


def child_config(cfg: Config, work_dir: str, name: str) -> Config:
    """A copy of a search config, without ``search_loop``, that trains one
    child in ``work_dir`` and logs as experiment ``name``."""
    child = copy.deepcopy(cfg)
    child.pop('search_loop', None)
    child.work_dir = work_dir
    child.experiment_name = name
    return child


def fresh_child_config(cfg: Config, work_dir: str, name: str) -> Config:
    """:func:`child_config` for a network trained from scratch in one
    process (every rank trains its own): no model wrapper, no launcher,
    nothing loaded or resumed."""
    child = child_config(cfg, work_dir, name)
    child.pop('model_wrapper_cfg', None)
    child.launcher = 'none'
    child.load_from, child.resume = None, False
    return child


def shorten_schedule(cfg: Config, epochs: int) -> None:
    """Makes an epoch-based training config train ``epochs`` epochs and
    validate once, after the last.

    Every ``param_scheduler``'s ``begin``, ``end`` and ``T_max`` are scaled
    by ``epochs / train_cfg.max_epochs`` (an end at least one past its
    begin), so a warm-up, cosine or linear decay runs its whole course in
    the shorter training; a per-epoch step (``StepLR``) keeps its step.

    Args:
        cfg: the config, changed in place.
        epochs: the new number of epochs.

    Raises:
        ConfigError: ``cfg`` does not train by epochs.
    """
    train_cfg = cfg.get('train_cfg') or {}
    total = train_cfg.get('max_epochs')
    if not total or train_cfg.get('by_epoch') is False:
        raise ConfigError(
            'the child training config must train by epochs '
            '(train_cfg.max_epochs); it has train_cfg '
            f'{dict(train_cfg)!r}.')
    ratio = epochs / total
    schedulers = cfg.get('param_scheduler') or []
    for scheduler in ([schedulers] if isinstance(schedulers, dict)
                      else schedulers):
        begin = round(scheduler.get('begin', 0) * ratio)
        if 'begin' in scheduler:
            scheduler['begin'] = begin
        if scheduler.get('end', math.inf) != math.inf:
            scheduler['end'] = max(begin + 1, round(scheduler['end'] * ratio))
        if 'T_max' in scheduler:
            scheduler['T_max'] = max(1, round(scheduler['T_max'] * ratio))
    cfg.train_cfg = dict(train_cfg, max_epochs=epochs, val_begin=epochs,
                         val_interval=epochs)
    cfg.max_epochs = epochs


def check_isolate(isolate: bool | None) -> None:
    """Refuses ``isolate=False`` (children trained inside the search's
    processes) when the search runs on several ranks."""
    if isolate is False and dist.get_world_size() > 1:
        raise ConfigError(
            'search_loop.isolate=False trains candidates inside the '
            'distributed processes, where each would join the others\' '
            'collectives; with several processes leave isolate unset '
            '(or True): each candidate trains in a subprocess.')


def train_child(cfg: Config, metric: str, isolate: bool | None) -> float:
    """Trains ``cfg`` in this process or, with ``isolate`` (None: when the
    search runs on several ranks), in a subprocess that sees this rank's
    GPU alone; returns the metric of its last validation."""
    if isolate is None:
        isolate = dist.get_world_size() > 1
    if not isolate:
        return train_and_validate(cfg, metric)
    device = None
    if torch.cuda.is_available():
        visible = os.environ.get('CUDA_VISIBLE_DEVICES')
        local = int(os.environ.get('LOCAL_RANK', 0))
        device = visible.split(',')[local] if visible else str(local)
    return train_in_subprocess(cfg, metric, device)


def split_jobs(jobs: Sequence, rank: int, world_size: int) -> list:
    """The share of ``jobs`` that ``rank`` trains: every
    ``world_size``-th, starting at ``rank``."""
    return list(jobs[rank::world_size])


def train_jobs(pending: Sequence, train: Callable[[Any], float],
               record: Callable[[list[tuple[Any, float]]], None],
               name: Callable[[Any], str], step: str, fix: str) -> None:
    """Trains ``pending`` jobs over the ranks, one per rank a round.

    Every rank must call it with the same jobs. After each round the
    results are gathered on every rank, checked (a NaN or infinite value
    stops the search on every rank before it is recorded) and passed to
    ``record``, which saves them.

    Args:
        pending: the jobs not trained yet (picklable, e.g. indices).
        train: trains one job, returns its metric.
        record: receives each round's ``[(job, value), ...]``, all ranks'.
        name: a job's description in error messages.
        step: what is training, for error messages.
        fix: what the user can do about a diverged training.
    """
    rank, world = dist.get_rank(), dist.get_world_size()
    for start in range(0, len(pending), world):
        mine = split_jobs(pending[start:start + world], rank, world)
        done = run_on_every_rank(
            lambda jobs=mine: [(job, train(job)) for job in jobs])
        gathered = dist.all_gather_object(done) if world > 1 else [done]
        results = [pair for jobs in gathered for pair in jobs]
        check_finite({name(job): value for job, value in results}, step,
                     fix)
        record(results)


def train_and_validate(cfg: Config, metric: str) -> float:
    """Trains ``cfg`` with a (non-distributed) Runner in this process.

    Args:
        cfg: a complete training config (``launcher='none'``).
        metric: the validation metric to return, e.g. ``accuracy/top1``.

    Returns:
        The metric of the last validation (the one after the last epoch
        trained, early stopping included); validates once more when
        training never validated. NaN when the last training loss is NaN or
        infinite (the training diverged).
    """
    runner = Runner.from_cfg(cfg)
    runner.train()
    scalars = runner.message_hub.log_scalars
    if 'train/loss' in scalars and not math.isfinite(
            scalars['train/loss'].current()):
        return math.nan
    if f'val/{metric}' in scalars:
        return float(scalars[f'val/{metric}'].current())
    metrics = runner.val()
    if metric not in metrics:
        raise ConfigError(
            f'search_loop.metric {metric!r} is not a validation metric of '
            f'the config; it reports {sorted(metrics)}.')
    return float(metrics[metric])


def train_in_subprocess(cfg: Config, metric: str,
                        device: str | None = None) -> float:
    """Trains ``cfg`` like :func:`train_and_validate`, in a new process
    that sees no distributed environment.

    Args:
        cfg: a complete training config; its ``work_dir`` receives the
            dumped config and the result.
        metric: the validation metric to return.
        device: the GPUs the child may see (``CUDA_VISIBLE_DEVICES``);
            None leaves the variable as it is.

    Returns:
        The metric of the last validation.

    Raises:
        RuntimeError: the child process failed (its output went to this
            process's stdout/stderr and to its work dir's log).
    """
    os.makedirs(cfg.work_dir, exist_ok=True)
    cfg_path = os.path.join(cfg.work_dir, 'child_config.py')
    result_path = os.path.join(cfg.work_dir, 'child_result.json')
    if os.path.exists(result_path):
        os.remove(result_path)
    cfg.dump(cfg_path)
    env = {k: v for k, v in os.environ.items() if k not in DIST_VARIABLES}
    if device is not None:
        env['CUDA_VISIBLE_DEVICES'] = device
    args = [cfg_path, metric, result_path]
    code = f'from {__name__} import main; main({args!r})'
    done = subprocess.run([sys.executable, '-c', code], env=env)
    if done.returncode != 0 or not os.path.isfile(result_path):
        raise RuntimeError(f'training the child config {cfg_path} failed '
                           f'(exit status {done.returncode}); see its log in '
                           f'{cfg.work_dir}.')
    with open(result_path) as f:
        return float(json.load(f)[metric])


def main(argv: list[str]) -> None:
    """Subprocess side: trains the config file ``argv[0]`` and writes
    ``{metric: value}`` (metric ``argv[1]``) to the JSON file ``argv[2]``.

    Args:
        argv: config path, metric name, result path.
    """
    import mmchansearch.models  # noqa: F401  (registers the models)
    cfg_path, metric, result_path = argv
    value = train_and_validate(Config.fromfile(cfg_path), metric)
    atomic_write_text(result_path, json.dumps({metric: value}))
