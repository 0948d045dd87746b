"""Prepares a dataset for the configs: decompresses it into ``data/``.

mmpretrain's ``FashionMNIST`` reads uncompressed IDX files from its
``data_root`` and would try to download them otherwise; this tool makes them
from the local Debian package ``dataset-fashion-mnist`` instead, so nothing
is downloaded at run time.

Examples:
    python tools/prepare_data.py fashion_mnist
    python tools/prepare_data.py fashion_mnist --src DIR --out data/fmnist
"""
from __future__ import annotations

import argparse
import gzip
import math
import os
import shutil
import struct
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mmchansearch.cli import run_tool
from mmchansearch.errors import ConfigError

UBYTE = 0x08  # IDX type code of unsigned bytes


@dataclass(frozen=True)
class IdxFile:
    """One uncompressed IDX file: its name and the shape it must hold.

    The magic number is ``0x0000_08_NN``: unsigned bytes, ``NN`` dims
    (2051 for images N x 28 x 28, 2049 for labels N).
    """

    name: str
    shape: tuple[int, ...]

    @property
    def magic(self) -> int:
        return UBYTE << 8 | len(self.shape)

    @property
    def size(self) -> int:
        """Bytes of the whole file: magic, one int32 per dim, the data."""
        return 4 * (1 + len(self.shape)) + math.prod(self.shape)


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset comes from and what its files must hold."""

    title: str
    src: str
    out: str
    install: str
    files: tuple[IdxFile, ...]


DATASETS = {
    'fashion_mnist': DatasetSpec(
        title='Fashion-MNIST',
        src='/usr/share/datasets/fashion-mnist',
        out='data/fashion_mnist',
        install='apt-get install -y dataset-fashion-mnist',
        files=(
            IdxFile('train-images-idx3-ubyte', (60000, 28, 28)),
            IdxFile('train-labels-idx1-ubyte', (60000, )),
            IdxFile('t10k-images-idx3-ubyte', (10000, 28, 28)),
            IdxFile('t10k-labels-idx1-ubyte', (10000, )),
        )),
}


def idx_problem(path: Path, spec: IdxFile) -> str | None:
    """What is wrong with the IDX file at ``path``, or None when complete.

    Args:
        path: an uncompressed IDX file.
        spec: the shape it must hold.

    Returns:
        A short description of the first problem found, or None.
    """
    size = path.stat().st_size
    header_size = 4 * (1 + len(spec.shape))
    with open(path, 'rb') as f:
        header = f.read(header_size)
    if len(header) < header_size:
        return f'{size} bytes, too short for an IDX header'
    magic, *dims = struct.unpack(f'>{1 + len(spec.shape)}I', header)
    if magic != spec.magic:
        return f'IDX magic number {magic}, expected {spec.magic}'
    if tuple(dims) != spec.shape:
        return f'shape {tuple(dims)}, expected {spec.shape}'
    if size != spec.size:
        return f'{size} bytes, expected {spec.size}'
    return None


def decompress(gz_path: Path, dst: Path, spec: IdxFile, fix: str) -> None:
    """Writes ``gz_path`` decompressed to ``dst`` atomically, checked.

    The data go to a temporary file next to ``dst`` that is renamed onto it
    only once complete and verified: an interrupted run never leaves a
    partial ``dst`` behind.

    Raises:
        ConfigError: the source is not valid gzip or not the expected IDX
            file; the message names ``fix``.
    """
    fd, tmp_name = tempfile.mkstemp(dir=dst.parent, prefix=f'.{dst.name}.',
                                    suffix='.tmp')
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, 'wb') as out, gzip.open(gz_path, 'rb') as src:
            try:
                shutil.copyfileobj(src, out, 1 << 20)
            except (OSError, EOFError, zlib.error) as err:
                raise ConfigError(f'{gz_path}: not a complete gzip file '
                                  f'({err}); reinstall it: {fix}') from None
            out.flush()
            os.fsync(out.fileno())
        problem = idx_problem(tmp, spec)
        if problem:
            raise ConfigError(f'{gz_path}: decompressed file has {problem}; '
                              f'reinstall it: {fix}')
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def prepare(src: Path, out: Path, files: Sequence[IdxFile],
            fix: str) -> list[tuple[str, str]]:
    """Decompresses ``src/NAME.gz`` to ``out/NAME`` for every file.

    Files already complete in ``out`` are skipped; incomplete or corrupt
    ones are replaced.

    Args:
        src: folder of the gzipped IDX files.
        out: folder to write the uncompressed files to (created).
        files: the files and the shapes they must hold.
        fix: the command that installs the source files, for messages.

    Returns:
        ``(name, what was done)`` for each file.

    Raises:
        ConfigError: a source file is missing or corrupt, or ``out`` cannot
            be written.
    """
    missing = [f'{f.name}.gz' for f in files
               if not (src / f'{f.name}.gz').is_file()]
    if missing:
        where = f'{src} has no {", ".join(missing)}' if src.is_dir() \
            else f'{src} does not exist'
        raise ConfigError(f'{where}; install the dataset with `{fix}` '
                          '(or pass --src DIR holding the .gz files).')
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f'--out {out}: cannot create it ({err.strerror})'
                          ) from None
    done = []
    for spec in files:
        dst = out / spec.name
        if dst.is_file():
            problem = idx_problem(dst, spec)
            if problem is None:
                done.append((spec.name, 'already complete, skipped'))
                continue
            action = f'replaced (had {problem})'
        else:
            action = f'written ({spec.size:,} bytes)'
        try:
            decompress(src / f'{spec.name}.gz', dst, spec, fix)
        except PermissionError as err:
            raise ConfigError(f'--out {out}: cannot write ({err.strerror})'
                              ) from None
        done.append((spec.name, action))
    return done


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('dataset', choices=sorted(DATASETS),
                        help='dataset to prepare')
    parser.add_argument('--src', help='folder of the gzipped files '
                        '(default: where the Debian package puts them, '
                        f'{DATASETS["fashion_mnist"].src} for fashion_mnist)')
    parser.add_argument('--out', help='folder the configs read (default: '
                        f'{DATASETS["fashion_mnist"].out} for fashion_mnist)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    dataset = DATASETS[args.dataset]
    out = Path(args.out or dataset.out)
    done = prepare(Path(args.src or dataset.src), out, dataset.files,
                   dataset.install)
    for name, action in done:
        print(f'{name}: {action}')
    print(f'{dataset.title} ready in {out}')


if __name__ == '__main__':
    run_tool(main)
