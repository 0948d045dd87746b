"""Checkpoint and file I/O.

Writes are atomic (a crash never leaves a half-written file behind), both
the toolbox's own and, once :func:`install_checkpoint_io` ran (the tools
call it), mmengine's. Checkpoints are loaded without running code from
them (``weights_only=True``, mmengine's training state allowed).
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.runner.checkpoint import CheckpointLoader

_UMASK = os.umask(0)
os.umask(_UMASK)


def _fsync_path(path: str | os.PathLike, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_replace_with(path: str | os.PathLike, write) -> None:
    """Writes through ``write(tmp_path)``, then renames over ``path``.

    Durable as well as atomic: the temporary file is flushed to disk before
    the rename and the folder after it, so after a crash or power loss
    ``path`` holds either the old or the whole new content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.',
                               suffix='.tmp')
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; use the usual mode
    try:
        write(tmp)
        _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_path(path.parent, directory=True)


# ``.<name>.<8 random characters>.tmp``: what :func:`atomic_replace_with`
# writes first.
_TEMP_NAME = re.compile(r'^\..+\.[A-Za-z0-9_]{8}\.tmp$')


def remove_stale_temp_files(folder: str | os.PathLike,
                            min_age_s: float = 60.0) -> list[str]:
    """Deletes the temporary files that killed atomic writes left in
    ``folder`` (and below): a killed checkpoint save leaves one as large as
    the checkpoint. Files modified in the last ``min_age_s`` seconds may
    belong to a write still running and are kept.

    Returns:
        The deleted paths.
    """
    removed = []
    now = time.time()
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            try:
                if _TEMP_NAME.match(name) and \
                        now - os.path.getmtime(path) >= min_age_s:
                    os.remove(path)
                    removed.append(path)
            except FileNotFoundError:  # removed meanwhile
                continue
    return removed


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

    Registered in place of mmengine's ``local`` backend by
    :func:`install_checkpoint_io`, so Runner checkpoints (and
    ``last_checkpoint``) are written to a temporary file and renamed: a job
    killed while saving never leaves a truncated checkpoint to resume from.
    """

    def put(self, obj: bytes, filepath: str | os.PathLike) -> None:
        """Writes bytes atomically."""
        atomic_replace_with(filepath, lambda tmp: Path(tmp).write_bytes(obj))

    def put_text(self, obj: str, filepath: str | os.PathLike,
                 encoding: str = 'utf-8') -> None:
        """Writes text atomically."""
        atomic_replace_with(
            filepath, lambda tmp: Path(tmp).write_text(obj, encoding))



def _checkpoint_globals() -> list:
    """What an mmengine checkpoint holds besides tensors and plain data:
    the message hub's history buffers (with their bound statistics methods,
    pickled through ``getattr``) and the numpy arrays and scalars in them.
    ``getattr`` only looks attributes up: the unpickler still calls nothing
    that is not on this list."""
    import numpy as np
    import numpy.dtypes
    from mmengine.logging.history_buffer import HistoryBuffer
    multiarray = np._core.multiarray
    return [HistoryBuffer, getattr, multiarray._reconstruct,
            multiarray.scalar, np.ndarray, np.dtype] + [
                getattr(numpy.dtypes, name) for name in dir(numpy.dtypes)
                if name.endswith('DType')]


def load_checkpoint_file(filename: str | os.PathLike, map_location=None):
    """Loads a checkpoint without running code from it.

    ``torch.load(weights_only=True)``, with mmengine's own training state
    allowed (see :func:`_checkpoint_globals`), so state dicts, ``meta`` and
    ``--resume`` all load; a file that holds any other object (a pickled
    model, say) is refused instead of being executed.
    """
    import pickle

    from .errors import CheckpointMismatchError
    filename = os.path.expanduser(str(filename))
    if not os.path.isfile(filename):
        raise CheckpointMismatchError(f'checkpoint {filename}: no such file.')
    try:
        with torch.serialization.safe_globals(_checkpoint_globals()):
            return torch.load(filename, map_location=map_location,
                              weights_only=True)
    except pickle.UnpicklingError as err:
        reason = next((line.strip() for line in str(err).splitlines()
                       if 'Unsupported global' in line), str(err)[:200])
        raise CheckpointMismatchError(
            f'checkpoint {filename} holds objects other than tensors and '
            f'mmengine\'s training state ({reason}); loading it could run '
            'code, so it is refused. If you trust the file, save just its '
            'state dict: torch.save({"state_dict": torch.load(PATH, '
            'weights_only=False)["state_dict"]}, NEW_PATH).') from None


def install_checkpoint_io() -> None:
    """Makes mmengine write checkpoints atomically
    (:class:`AtomicLocalBackend`) and load them with
    :func:`load_checkpoint_file`.

    This changes mmengine for the whole process, so it is not done on
    import: the tools call it at their entry
    (:func:`mmchansearch.cli.run_tool`), and a program using the library
    calls it itself if it wants both.
    """
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    CheckpointLoader.register_scheme(
        prefixes='', force=True,
        loader=lambda filename, map_location=None: load_checkpoint_file(
            filename, map_location))


def text_digest(text: str) -> str:
    """SHA-256 of a text's UTF-8 bytes (hex)."""
    return hashlib.sha256(text.encode()).hexdigest()


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's content (hex), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()
