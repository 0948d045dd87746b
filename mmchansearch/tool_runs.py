"""Running the tools/ scripts as timed, recorded, resumable stages.

The main job (``tools/demo_autoslim.py``), the comparison
(``tools/compare.py``) and the quality benchmarks call the same tools a
user types, each as a stage of a work dir: ``stages.json`` records every
finished stage with its command and time, so a killed job started again
skips what finished, and a stage asked to run with another command, or
whose config or input files changed since, is refused instead of being
silently reused. Several processes may share a work dir (e.g.
``tools/compare.py --methods A`` and ``--methods B``): a stage runs in one
of them while the others wait for it and then reuse it. A failing tool ends
the job with one ``error:`` line that shows the end of its log.
"""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from mmengine.logging import MMLogger

from .errors import ConfigError
from .fileio import atomic_write_text, file_digest, text_digest


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
        self._reload()

    def _reload(self) -> None:
        if os.path.isfile(self.path):
            with open(self.path) as f:
                self.stages = {k: v if isinstance(v, dict) else dict(seconds=v)
                               for k, v in json.load(f).items()}

    @contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        """An exclusive lock of this work dir's ``name`` across processes."""
        os.makedirs(self.work_dir, exist_ok=True)
        with open(os.path.join(self.work_dir, f'.{name}.lock'), 'w') as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def done(self, stage: str) -> bool:
        """Whether ``stage`` finished before."""
        return stage in self.stages

    def run(self, stage: str, *args) -> None:
        """Runs the tool unless ``stage`` finished before with the same
        arguments and inputs; its output goes to ``<work_dir>/<stage>.log``.
        Another process running the same stage is waited for."""
        command = [str(a) for a in args]
        with self._lock(f'stage-{stage}'):
            self._reload()
            inputs = _input_digests(command)
            if self.done(stage):
                self._check_same(stage, command, inputs)
                return
            self._run(stage, command)
            self.record(stage, self._seconds, command, inputs)

    def _check_same(self, stage: str, command: list[str],
                    inputs: dict[str, str]) -> None:
        recorded = self.stages[stage]
        if recorded.get('command') not in (None, command):
            raise ConfigError(
                f'stage {stage} of {self.work_dir} finished before with other '
                f'arguments ({" ".join(recorded["command"])}); use a new work '
                f'dir, or delete {self.path} to redo every stage.')
        changed = [path for path, digest in (recorded.get('inputs') or
                                             {}).items()
                   if inputs.get(path) != digest]
        if changed:
            raise ConfigError(
                f'stage {stage} of {self.work_dir} finished before with '
                f'another version of {", ".join(changed)}; use a new work '
                f'dir, or delete {self.path} to redo every stage.')

    def _run(self, stage: str, command: list[str]) -> None:
        log = os.path.join(self.work_dir, f'{stage}.log')
        self.logger.info(f'{stage}: python {" ".join(command)} '
                         f'(log: {log})')
        start = time.perf_counter()
        argv = [sys.executable, tool_path(command[0]), *command[1:]]
        with open(log, 'a') as f:
            if self.echo:
                returncode = _run_teed(argv, f)
            else:
                returncode = subprocess.run(
                    argv, stdout=f,
                    stderr=subprocess.STDOUT).returncode
        if returncode != 0:
            with open(log) as f:
                tail = ''.join(f.readlines()[-15:])
            raise ConfigError(f'{stage} failed (exit {returncode}); '
                              f'the end of {log}:\n{tail}')
        self._seconds = time.perf_counter() - start

    def record(self, stage: str, seconds: float,
               command: Sequence[str] | None = None,
               inputs: dict[str, str] | None = None) -> None:
        """Marks ``stage`` finished after ``seconds`` of work (merged with
        what other processes recorded meanwhile)."""
        with self._lock('stages'):
            self._reload()
            self.stages[stage] = dict(
                seconds=round(seconds, 2),
                command=None if command is None else list(command),
                inputs=inputs or {})
            atomic_write_text(self.path, json.dumps(self.stages, indent=1))

    def seconds(self, stage: str) -> float:
        """How long ``stage`` took."""
        return self.stages[stage]['seconds']

    def minutes(self, prefix: str = '') -> float:
        """Minutes spent in the stages whose names start with ``prefix``."""
        return sum(s['seconds'] for k, s in self.stages.items()
                   if k.startswith(prefix)) / 60


def tool_path(script: str) -> str:
    """Where ``tools/<script>`` is: relative to the working directory if
    it is there, else in the checkout this package runs from (so a job
    started from another directory still finds the tools; the stage keeps
    ``tools/<script>`` as its recorded command)."""
    if os.path.isfile(script) or os.path.isabs(script):
        return script
    beside = os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), script)
    if os.path.isfile(beside):
        return beside
    raise ConfigError(f'{script} not found in {os.getcwd()} nor beside the '
                      f'mmchansearch package; run the job from the '
                      f'repository root.')


def _input_digests(command: Sequence[str]) -> dict[str, str]:
    """What a command reads, by content: each argument that names a file
    (a config with everything it inherits, a channel_cfg, a checkpoint;
    ``key=PATH`` options too), not the tool script (code is not input)."""
    digests = {}
    for arg in command[1:]:
        path = arg.split('=', 1)[1] if '=' in arg else arg
        for item in path.split(','):
            if os.path.isfile(item) and item not in digests:
                digests[item] = _config_digest(item) \
                    if item.endswith('.py') else file_digest(item)
    return digests


def _config_digest(path: str) -> str:
    """A config file by what it resolves to (its ``_base_`` files too)."""
    from mmengine.config import Config
    try:
        text = Config.fromfile(path).pretty_text
    except Exception:  # not a config: its bytes
        return file_digest(path)
    return text_digest(text)


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
