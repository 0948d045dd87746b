"""Running the tools of a comparison: derived configs, timed and
resumable tool calls."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

from mmengine.config import Config
from mmengine.logging import MMLogger

from ..errors import ConfigError
from ..fileio import atomic_write_text


def _set_data_root(node, data_root: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'data_root':
                node[key] = data_root
            else:
                _set_data_root(value, data_root)
    elif isinstance(node, list):
        for item in node:
            _set_data_root(item, data_root)


def derive_config(source: str, overrides: Sequence[Mapping | None],
                  out: str, data_root: str | None = None) -> str:
    """Writes ``source`` with each of ``overrides`` merged in turn (nested
    dicts; ``_delete_=True`` replaces instead of merging) and every
    dataset's ``data_root`` replaced, to ``out``; returns ``out``."""
    if not os.path.isfile(source):
        raise ConfigError(f'compare config names {source}: no such file.')
    cfg = Config.fromfile(source)
    for item in overrides:
        if item:
            cfg.merge_from_dict(copy.deepcopy(dict(item)))
    resolved = cfg.to_dict()  # without the inherited file bookkeeping
    if data_root:
        _set_data_root(resolved, data_root)
    os.makedirs(os.path.dirname(out) or '.', exist_ok=True)
    atomic_write_text(out, Config(resolved).pretty_text)
    return out


class ToolRunner:
    """Runs ``python tools/<script>`` from the working directory and
    records how long each named stage took (``stages.json`` in
    ``work_dir``; a finished stage is not run again)."""

    def __init__(self, work_dir: str) -> None:
        self.work_dir = work_dir
        self.path = os.path.join(work_dir, 'stages.json')
        self.logger = MMLogger.get_current_instance()
        self.stages: dict[str, float] = {}
        if os.path.isfile(self.path):
            with open(self.path) as f:
                self.stages = json.load(f)

    def done(self, stage: str) -> bool:
        return stage in self.stages

    def run(self, stage: str, *args) -> None:
        """Runs the tool unless ``stage`` finished before; its output goes
        to ``<work_dir>/<stage>.log``."""
        if self.done(stage):
            return
        os.makedirs(self.work_dir, exist_ok=True)
        log = os.path.join(self.work_dir, f'{stage}.log')
        self.logger.info(f'{stage}: python {" ".join(map(str, args))} '
                         f'(log: {log})')
        start = time.perf_counter()
        with open(log, 'a') as f:
            result = subprocess.run([sys.executable, *map(str, args)],
                                    stdout=f, stderr=subprocess.STDOUT)
        if result.returncode != 0:
            with open(log) as f:
                tail = ''.join(f.readlines()[-15:])
            raise ConfigError(f'{stage} failed (exit {result.returncode}); '
                              f'the end of {log}:\n{tail}')
        self.record(stage, time.perf_counter() - start)

    def record(self, stage: str, seconds: float) -> None:
        """Marks ``stage`` finished after ``seconds`` of work."""
        self.stages[stage] = round(seconds, 2)
        atomic_write_text(self.path, json.dumps(self.stages, indent=1))

    def minutes(self, prefix: str = '') -> float:
        """Minutes spent in the stages whose names start with ``prefix``."""
        return sum(s for k, s in self.stages.items()
                   if k.startswith(prefix)) / 60


def train_and_test(runner: ToolRunner, config: str, name: str,
                   options: Sequence[str] = ()) -> float:
    """Trains ``config`` in ``<runner.work_dir>/<name>`` (resuming a killed
    run), tests its last checkpoint and returns the test top-1; a network
    with ``<name>/test.json`` is not run again.

    Args:
        runner: runs the tools (stages ``train_<name>``, ``test_<name>``).
        config: the training config.
        name: the run's folder.
        options: ``--cfg-options`` of both tools.
    """
    run_dir = os.path.join(runner.work_dir, name)
    metrics = os.path.join(run_dir, 'test.json')
    extra = ['--cfg-options', *options] if options else []
    if not os.path.isfile(metrics):
        runner.run(f'train_{name}', 'tools/train.py', config, '--work-dir',
                   run_dir, '--resume', *extra)
        with open(os.path.join(run_dir, 'last_checkpoint')) as f:
            checkpoint = f.read().strip()
        runner.run(f'test_{name}', 'tools/test.py', config, checkpoint,
                   '--out', metrics, '--work-dir', run_dir, *extra)
    with open(metrics) as f:
        return json.load(f)['accuracy/top1']
