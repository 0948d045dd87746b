"""The resumable state of a search: one JSON file in the work dir.

Every search that runs for hours (AutoSlim's greedy slimming, Network
Adjustment, the ReXNet channel search) keeps what it has done in a state
file, written atomically by rank 0 after each step. The state also records
what its numbers depend on (the config's model, data, schedule and search
sections; the start checkpoint's content hash), so that:

- a state found without ``--resume`` is refused rather than overwritten
  (``--force`` starts over on purpose);
- ``--resume`` against another config or checkpoint is refused, naming what
  changed, instead of mixing two searches in one result.

The state is read on rank 0 and broadcast, so every rank continues from the
same step and a bad state ends all ranks with the same error.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mmengine import dist
from mmengine.logging import MMLogger

from ..distributed import run_on_main
from ..errors import ConfigError
from ..fileio import atomic_write_text, file_digest, text_digest

# Config sections a search's numbers depend on (absent ones are skipped).
CONFIG_SECTIONS = ('model', 'search_loop', 'train_dataloader', 'optim_wrapper',
                   'param_scheduler', 'train_cfg', 'randomness')


# Settings that change speed, never results (data-loading workers; a
# child training in a subprocess or in the process).
_SPEED_ONLY = ('num_workers', 'persistent_workers', 'pin_memory', 'isolate')


def config_fingerprint(value: Any) -> str:
    """A short hash of a config section (any JSON-like value), ignoring
    settings that only change speed."""
    text = json.dumps(_without_speed_settings(value), sort_keys=True,
                      default=repr)
    return text_digest(text)[:16]


def search_dependencies(cfg: Mapping, checkpoint: str | None = None,
                        ignored: Iterable[str] = (),
                        **extra: Any) -> dict[str, Any]:
    """What a search's state depends on: a fingerprint per config section,
    the checkpoint's SHA-256 and ``extra`` values.

    Args:
        cfg: the config.
        checkpoint: the checkpoint the search starts from, if any.
        ignored: keys of a section, dotted (``'search_loop.scales'``),
            that the state's numbers do not depend on: left out of the
            section's fingerprint.
        **extra: further values the state depends on.

    Returns:
        Name -> fingerprint or value.
    """
    dropped: dict[str, set[str]] = {}
    for name in ignored:
        section, _, key = name.partition('.')
        dropped.setdefault(section, set()).add(key)
    depends = {}
    for section in CONFIG_SECTIONS:
        value = cfg.get(section)
        if value is None:
            continue
        if section in dropped and isinstance(value, Mapping):
            value = {k: v for k, v in value.items()
                     if k not in dropped[section]}
        depends[f'config.{section}'] = config_fingerprint(value)
    if checkpoint:  # its content: a moved or copied file is the same
        depends['checkpoint'] = file_digest(checkpoint)
    depends.update(extra)
    return depends


def _without_speed_settings(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_speed_settings(v) for k, v in value.items()
                if k not in _SPEED_ONLY}
    if isinstance(value, (list, tuple)):
        return [_without_speed_settings(v) for v in value]
    return value


def check_fresh_start(path: str, resume: bool, force: bool) -> None:
    """Refuses to start a search over an earlier one's ``path`` (a state
    file or a training checkpoint pointer) unless ``force``: forgetting
    ``--resume`` must not throw hours of work away."""
    if resume or not os.path.isfile(path):
        return
    if force:
        MMLogger.get_current_instance().warning(
            f'--force: starting over; the earlier search\'s {path} and '
            'results are overwritten.')
        return
    raise ConfigError(
        f'{path} belongs to an earlier search in this work dir; add --resume '
        'to continue it, --force to start over (its results are '
        'overwritten), or use another --work-dir.')


class SearchState:
    """Loads and saves one search's state file.

    Args:
        path: the state file.
        depends_on: what the state's numbers depend on
            (:func:`search_dependencies`).
        resume: continue from an existing state.
        force: start over even though a state exists (it is overwritten at
            the first save).
        accepted: other dependencies a saved state may record for the
            same search (what an earlier version of the search recorded).
    """

    def __init__(self, path: str, depends_on: dict, resume: bool = False,
                 force: bool = False, accepted: Sequence[dict] = ()) -> None:
        self.path, self.depends_on = path, depends_on
        self.resume, self.force = resume, force
        self.accepted = list(accepted)

    def load(self) -> dict | None:
        """The saved state to resume from, the same on every rank; None for
        a fresh start."""
        return run_on_main(self._read)

    def save(self, state: dict) -> None:
        """Writes ``state`` (with its dependencies) atomically on rank 0."""
        if dist.is_main_process():
            state = dict(state, depends_on=self.depends_on)
            atomic_write_text(self.path, json.dumps(state, indent=1))

    def _read(self) -> dict | None:
        if not os.path.isfile(self.path) or not self.resume:
            check_fresh_start(self.path, self.resume, self.force)
            return None
        try:
            with open(self.path, encoding='utf-8') as f:
                state = json.load(f)
        except (OSError, ValueError) as err:
            raise ConfigError(
                f'{self.path} cannot be read ({err}); delete it (or use '
                '--force) to start over.') from None
        self._check_dependencies(state.get('depends_on'))
        state.pop('depends_on', None)
        return state

    def _check_dependencies(self, saved: dict | None) -> None:
        if saved is None:
            MMLogger.get_current_instance().warning(
                f'{self.path} records nothing it depends on (written by an '
                'older version); resuming without checking the config and '
                'checkpoint.')
            return
        changed = [key for key in sorted(set(saved) | set(self.depends_on))
                   if saved.get(key) != self.depends_on.get(key)]
        if changed and saved not in self.accepted:
            raise ConfigError(
                f'{self.path} was made with another '
                f'{", ".join(changed)} than this run has; resume with the '
                'same config and checkpoint, or start over with --force or '
                'another --work-dir.')
