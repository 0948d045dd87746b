"""tools/prepare_data.py: decompression, checks, atomic and idempotent."""
from __future__ import annotations

import gzip
import importlib.util
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmchansearch.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / 'tools' / 'prepare_data.py'
REAL_SRC = Path('/usr/share/datasets/fashion-mnist')
INSTALL = 'apt-get install -y dataset-fashion-mnist'


def _load_tool():
    spec = importlib.util.spec_from_file_location('prepare_data', TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


prepare_data = _load_tool()
IdxFile = prepare_data.IdxFile

# Fashion-MNIST's four files, with 5 training and 3 test images of 4x4.
TINY = (
    IdxFile('train-images-idx3-ubyte', (5, 4, 4)),
    IdxFile('train-labels-idx1-ubyte', (5, )),
    IdxFile('t10k-images-idx3-ubyte', (3, 4, 4)),
    IdxFile('t10k-labels-idx1-ubyte', (3, )),
)


def idx_bytes(shape: tuple[int, ...], magic: int | None = None,
              seed: int = 0) -> bytes:
    """An IDX file of unsigned bytes holding random data of ``shape``."""
    if magic is None:
        magic = 0x0800 | len(shape)
    data = np.random.default_rng(seed).integers(
        0, 256, size=shape, dtype=np.uint8)
    return struct.pack(f'>{1 + len(shape)}I', magic, *shape) + data.tobytes()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """A folder with the four files of TINY, gzipped."""
    folder = tmp_path / 'src'
    folder.mkdir()
    for i, spec in enumerate(TINY):
        with gzip.open(folder / f'{spec.name}.gz', 'wb') as f:
            f.write(idx_bytes(spec.shape, seed=i))
    return folder


def run_prepare(src: Path, out: Path, files=TINY):
    return prepare_data.prepare(src, out, files, INSTALL)


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith('.'))


def test_writes_uncompressed_files(src: Path, tmp_path: Path) -> None:
    out = tmp_path / 'data' / 'fashion_mnist'
    done = run_prepare(src, out)
    assert [name for name, _ in done] == [f.name for f in TINY]
    assert all(action.startswith('written') for _, action in done)
    for i, spec in enumerate(TINY):
        assert (out / spec.name).read_bytes() == idx_bytes(spec.shape, seed=i)
    assert leftovers(out) == []


def test_real_spec_matches_idx_sizes() -> None:
    files = prepare_data.DATASETS['fashion_mnist'].files
    assert [f.shape[0] for f in files] == [60000, 60000, 10000, 10000]
    assert [f.magic for f in files] == [2051, 2049, 2051, 2049]
    assert files[0].size == 16 + 60000 * 28 * 28
    assert files[1].size == 8 + 60000


def test_second_run_skips_complete_files(src: Path, tmp_path: Path) -> None:
    out = tmp_path / 'out'
    run_prepare(src, out)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    done = run_prepare(src, out)
    assert all(action == 'already complete, skipped' for _, action in done)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_incomplete_file_is_replaced(src: Path, tmp_path: Path) -> None:
    out = tmp_path / 'out'
    run_prepare(src, out)
    target = out / TINY[0].name
    target.write_bytes(target.read_bytes()[:-3])
    done = dict(run_prepare(src, out))
    assert done[TINY[0].name].startswith('replaced')
    assert done[TINY[1].name] == 'already complete, skipped'
    assert target.read_bytes() == idx_bytes(TINY[0].shape, seed=0)


@pytest.mark.parametrize('shape, magic, problem', [
    ((5, 4, 4), 0x0801, 'magic number 2049, expected 2051'),
    ((6, 4, 4), None, 'shape (6, 4, 4), expected (5, 4, 4)'),
])
def test_wrong_source_is_rejected(src: Path, tmp_path: Path, shape, magic,
                                  problem) -> None:
    with gzip.open(src / f'{TINY[0].name}.gz', 'wb') as f:
        f.write(idx_bytes(shape, magic))
    out = tmp_path / 'out'
    with pytest.raises(ConfigError, match='reinstall') as err:
        run_prepare(src, out)
    assert problem in str(err.value)
    assert not (out / TINY[0].name).exists()
    assert leftovers(out) == []


def test_truncated_gzip_is_rejected(src: Path, tmp_path: Path) -> None:
    gz = src / f'{TINY[0].name}.gz'
    gz.write_bytes(gz.read_bytes()[:-12])
    out = tmp_path / 'out'
    with pytest.raises(ConfigError, match='not a complete gzip file'):
        run_prepare(src, out)
    assert not (out / TINY[0].name).exists()
    assert leftovers(out) == []


def test_interrupted_write_leaves_old_file(src: Path, tmp_path: Path,
                                           monkeypatch) -> None:
    out = tmp_path / 'out'
    out.mkdir()
    old = out / TINY[0].name
    old.write_bytes(b'old partial data')

    def interrupted(fsrc, fdst, length=0):
        fdst.write(fsrc.read(10))
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare_data.shutil, 'copyfileobj', interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_prepare(src, out)
    assert old.read_bytes() == b'old partial data'
    assert leftovers(out) == []


def test_missing_folder_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        run_prepare(tmp_path / 'nowhere', tmp_path / 'out')
    message = str(err.value)
    assert INSTALL in message and 'nowhere does not exist' in message
    assert not (tmp_path / 'out').exists()


def test_missing_file_is_named(src: Path, tmp_path: Path) -> None:
    (src / f'{TINY[3].name}.gz').unlink()
    with pytest.raises(ConfigError, match=f'has no {TINY[3].name}.gz'):
        run_prepare(src, tmp_path / 'out')
    assert not (tmp_path / 'out').exists()


def test_cli_prints_one_line_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(TOOL), 'fashion_mnist', '--src',
         str(tmp_path / 'nowhere'), '--out', str(tmp_path / 'out')],
        capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, 'PYTHONWARNINGS': 'ignore'})
    assert result.returncode == 2
    assert 'Traceback' not in result.stderr
    lines = [line for line in result.stderr.splitlines()
             if line.startswith('error:')]
    assert len(lines) == 1 and INSTALL in lines[0]


def test_cli_rejects_unknown_dataset(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(TOOL), 'cifar10'], capture_output=True,
        text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert "invalid choice: 'cifar10'" in result.stderr


@pytest.mark.skipif(not REAL_SRC.is_dir(),
                    reason='dataset-fashion-mnist is not installed')
def test_real_fashion_mnist(tmp_path: Path) -> None:
    spec = prepare_data.DATASETS['fashion_mnist']
    out = tmp_path / 'fashion_mnist'
    prepare_data.prepare(REAL_SRC, out, spec.files, spec.install)
    for f in spec.files:
        assert prepare_data.idx_problem(out / f.name, f) is None
