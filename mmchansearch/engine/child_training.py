"""Trains one child config of a search and returns its validation metric.

Searches that train many candidate networks (ReXNet's channel
parameterization search) build each candidate's config from the search
config and train it here, either in the search's own process or, when the
search runs on several ranks, in a fresh subprocess: a child Runner built
inside a distributed process would join its collectives (timestamp
broadcast, sampler sharding, metric gathering) and deadlock or train on a
fraction of the data, since every rank trains a different candidate.

The subprocess runs :func:`main` on a dumped config.
"""
from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys

from mmengine.config import Config
from mmengine.runner import Runner

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
