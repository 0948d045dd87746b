"""Checkpoint and file I/O.

Writes are atomic (a crash never leaves a half-written file behind), both
the toolbox's own and mmengine's, and mmengine checkpoints load again
under torch >= 2.6.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.runner.checkpoint import CheckpointLoader

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_replace_with(path: str | os.PathLike, write) -> None:
    """Writes through ``write(tmp_path)`` then renames over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.',
                               suffix='.tmp')
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; use the usual mode
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes ``text`` to ``path`` atomically."""

    def write(tmp: str) -> None:
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    atomic_replace_with(path, write)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically."""
    atomic_replace_with(path, lambda tmp: torch.save(obj, tmp))


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend with atomic writes.

    Registered in place of mmengine's ``local`` backend when mmchansearch is
    imported, so Runner checkpoints (and ``last_checkpoint``) are written to
    a temporary file and renamed: a job killed while saving never leaves a
    truncated checkpoint to resume from.
    """

    def put(self, obj: bytes, filepath: str | os.PathLike) -> None:
        """Writes bytes atomically."""
        atomic_replace_with(filepath, lambda tmp: Path(tmp).write_bytes(obj))

    def put_text(self, obj: str, filepath: str | os.PathLike,
                 encoding: str = 'utf-8') -> None:
        """Writes text atomically."""
        atomic_replace_with(
            filepath, lambda tmp: Path(tmp).write_text(obj, encoding))


register_backend('local', AtomicLocalBackend, force=True, prefixes='')


def load_local_checkpoint(filename: str, map_location=None):
    """mmengine's local checkpoint loader, for torch >= 2.6.

    torch now unpickles with ``weights_only=True`` by default, which refuses
    the message-hub state mmengine itself stores in every checkpoint, so
    ``--resume`` and ``load_from`` would fail. Checkpoints are loaded as
    mmengine always loaded them: load only checkpoints you trust.
    """
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=False)


CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint,
                                 force=True)
