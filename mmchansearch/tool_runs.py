"""Running the tools/ scripts as timed, recorded, resumable stages.

The main job (``tools/demo_autoslim.py``), the comparison
(``tools/compare.py``) and the quality benchmarks call the same tools a
user types, each as a stage of a work dir: ``stages.json`` records every
finished stage with its command and time, so a killed job started again
skips what finished, and a stage asked to run with another command is
refused instead of being silently reused. A failing tool ends the job with
one ``error:`` line that shows the end of its log.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence

from mmengine.logging import MMLogger

from .errors import ConfigError
from .fileio import atomic_write_text


class ToolRunner:
    """Runs ``python tools/<script>`` from the working directory as named
    stages of ``work_dir``.

    Every finished stage is recorded in ``<work_dir>/stages.json`` with its
    command and seconds; a recorded stage is not run again, and running it
    with another command is an error (a stale result is never reused).

    Args:
        work_dir: where ``stages.json`` and the stages' logs go.
        echo: also print each tool's output as it runs (the log file gets
            it in any case).
    """

    def __init__(self, work_dir: str, echo: bool = False) -> None:
        self.work_dir = work_dir
        self.echo = echo
        self.path = os.path.join(work_dir, 'stages.json')
        self.logger = MMLogger.get_current_instance()
        self.stages: dict[str, dict] = {}
        if os.path.isfile(self.path):
            with open(self.path) as f:
                self.stages = {k: v if isinstance(v, dict) else dict(seconds=v)
                               for k, v in json.load(f).items()}

    def done(self, stage: str) -> bool:
        """Whether ``stage`` finished before."""
        return stage in self.stages

    def run(self, stage: str, *args) -> None:
        """Runs the tool unless ``stage`` finished before with the same
        arguments; its output goes to ``<work_dir>/<stage>.log``."""
        command = [str(a) for a in args]
        if self.done(stage):
            recorded = self.stages[stage].get('command')
            if recorded is not None and recorded != command:
                raise ConfigError(
                    f'stage {stage} of {self.work_dir} finished before with '
                    f'other arguments ({" ".join(recorded)}); use a new work '
                    f'dir, or delete {self.path} to redo every stage.')
            return
        os.makedirs(self.work_dir, exist_ok=True)
        log = os.path.join(self.work_dir, f'{stage}.log')
        self.logger.info(f'{stage}: python {" ".join(command)} '
                         f'(log: {log})')
        start = time.perf_counter()
        with open(log, 'a') as f:
            if self.echo:
                returncode = _run_teed([sys.executable, *command], f)
            else:
                returncode = subprocess.run(
                    [sys.executable, *command], stdout=f,
                    stderr=subprocess.STDOUT).returncode
        if returncode != 0:
            with open(log) as f:
                tail = ''.join(f.readlines()[-15:])
            raise ConfigError(f'{stage} failed (exit {returncode}); '
                              f'the end of {log}:\n{tail}')
        self.record(stage, time.perf_counter() - start, command)

    def record(self, stage: str, seconds: float,
               command: Sequence[str] | None = None) -> None:
        """Marks ``stage`` finished after ``seconds`` of work."""
        self.stages[stage] = dict(seconds=round(seconds, 2),
                                  command=None if command is None
                                  else list(command))
        atomic_write_text(self.path, json.dumps(self.stages, indent=1))

    def seconds(self, stage: str) -> float:
        """How long ``stage`` took."""
        return self.stages[stage]['seconds']

    def minutes(self, prefix: str = '') -> float:
        """Minutes spent in the stages whose names start with ``prefix``."""
        return sum(s['seconds'] for k, s in self.stages.items()
                   if k.startswith(prefix)) / 60


def _run_teed(command: list[str], log) -> int:
    """Runs ``command``, copying its output to stdout and ``log``."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               bufsize=1)
    for line in process.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        log.write(line)
    return process.wait()


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
