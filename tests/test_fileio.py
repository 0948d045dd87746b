"""Checkpoint I/O: loads that run no code, opt-in mmengine patching,
atomic writes."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.logging import MessageHub

from mmchansearch.checkpoint import newest_complete_checkpoint
from mmchansearch.errors import CheckpointMismatchError
from mmchansearch.fileio import atomic_torch_save, load_checkpoint_file

MARKER = 'pickled code ran'


class _RunsCode:
    """An object whose unpickling calls print (stands for any code)."""

    def __reduce__(self):
        return (print, (MARKER, ))


def test_pickled_code_is_refused_not_run(tmp_path, capsys):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.ones(2)}, 'x': _RunsCode()}, path)
    with pytest.raises(CheckpointMismatchError, match='could run code'):
        load_checkpoint_file(path)
    assert MARKER not in capsys.readouterr().out


def test_mmengine_training_state_loads(tmp_path):
    hub = MessageHub.get_instance('test_fileio')
    hub.update_scalar('train/loss', 1.5)
    hub.update_scalar('train/loss', 0.5)
    hub.update_info('epoch', 3)
    path = tmp_path / 'ckpt.pth'
    atomic_torch_save({'state_dict': {'w': torch.arange(3.0)},
                       'meta': {'epoch': 3},
                       'message_hub': hub.state_dict()}, path)
    loaded = load_checkpoint_file(path)
    assert torch.equal(loaded['state_dict']['w'], torch.arange(3.0))
    restored = MessageHub.get_instance('test_fileio_restored')
    restored.load_state_dict(loaded['message_hub'])
    assert restored.get_scalar('train/loss').mean() == 1.0
    assert not [p for p in tmp_path.iterdir() if p.suffix == '.tmp']


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointMismatchError, match='no such file'):
        load_checkpoint_file(tmp_path / 'nope.pth')


def test_import_leaves_mmengine_unpatched():
    """Importing the library changes nothing in mmengine; the tools
    install the checkpoint I/O at their entry."""
    code = (
        'from mmengine.runner.checkpoint import CheckpointLoader\n'
        'from mmengine.fileio.backends import backends\n'
        'before = (dict(CheckpointLoader._schemes), backends["local"])\n'
        'import mmchansearch, mmchansearch.models, mmchansearch.engine\n'
        'after = (dict(CheckpointLoader._schemes), backends["local"])\n'
        'assert before == after, (before, after)\n'
        'from mmchansearch.fileio import install_checkpoint_io\n'
        'install_checkpoint_io()\n'
        'assert backends["local"].__name__ == "AtomicLocalBackend"\n'
        'print("ok")\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True,
                            text=True, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith('ok')


def test_stale_temporary_files_of_killed_writes_are_removed(tmp_path):
    """A killed atomic write leaves ``.NAME.XXXXXXXX.tmp``; old ones go,
    fresh ones (a write may still run) and other files stay."""
    import tempfile
    import time

    from mmchansearch.fileio import remove_stale_temp_files
    (tmp_path / 'round_1').mkdir()
    stale = []
    for folder in (tmp_path, tmp_path / 'round_1'):
        fd, path = tempfile.mkstemp(dir=folder, prefix='.epoch_1.pth.',
                                    suffix='.tmp')
        os.close(fd)
        os.utime(path, (time.time() - 600, ) * 2)
        stale.append(path)
    fd, fresh = tempfile.mkstemp(dir=tmp_path, prefix='.state.json.',
                                 suffix='.tmp')
    os.close(fd)
    other = tmp_path / 'notes.tmp'
    other.write_text('mine')
    os.utime(other, (time.time() - 600, ) * 2)
    assert sorted(remove_stale_temp_files(tmp_path)) == sorted(stale)
    assert os.path.exists(fresh) and other.exists()
    assert not any(os.path.exists(p) for p in stale)


def test_resume_skips_a_pointer_to_a_deleted_or_broken_checkpoint(tmp_path):
    """A kill between mmengine's removal of an old checkpoint and its
    rewrite of last_checkpoint leaves the pointer naming a deleted file:
    --resume (tools/train.py and tools/search.py) takes the newest
    checkpoint that loads instead."""
    good = tmp_path / 'epoch_1.pth'
    atomic_torch_save({'state_dict': {}, 'meta': {'epoch': 1}}, str(good))
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_2.pth'))
    assert newest_complete_checkpoint(str(tmp_path)) == str(good)
    (tmp_path / 'epoch_3.pth').write_bytes(b'truncated')  # newer, broken
    assert newest_complete_checkpoint(str(tmp_path)) == str(good)
    (tmp_path / 'last_checkpoint').write_text(str(good))
    assert newest_complete_checkpoint(str(tmp_path)) is None  # mmengine's
