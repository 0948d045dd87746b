"""What every tools/ script shares: arguments, config loading, user errors."""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
from collections.abc import Callable, Sequence

from mmengine.config import Config, DictAction

from .errors import ChannelSearchError, ConfigError

__all__ = ['DictAction', 'add_runner_args', 'add_strict_arg',
           'add_supernet_args', 'refuse_overwriting_inputs',
           'load_config', 'runner_config', 'run_tool', 'supernet_from_args']


# Scopes whose registries the toolbox's registries extend: a config of
# either finds the toolbox's types (and its own) under the toolbox's scope.
_COVERED_SCOPES = (None, 'mmengine', 'mmpretrain', 'mmchansearch')


def load_config(path: str, cfg_options: dict | None = None) -> Config:
    """Reads a config file and merges ``--cfg-options``.

    A config whose ``default_scope`` is mmpretrain's (a config the user
    already has, e.g. ``_base_ = ['mmpretrain::resnet/...py']`` wrapped in
    a toolbox algorithm) gets the toolbox's scope: its registries are
    children of mmpretrain's, so both the toolbox's types (``AutoSlim``,
    the search loops) and every mmpretrain type are found.
    """
    try:
        cfg = Config.fromfile(path)
    except FileNotFoundError:
        raise ConfigError(f'config {path}: no such file.') from None
    except ModuleNotFoundError as err:
        if err.name != 'pkg_resources':
            raise
        # mmengine resolves `_base_ = ['package::path']` with pkg_resources
        raise ConfigError(
            f'config {path}: a _base_ of the form package::file needs '
            'pkg_resources, which setuptools >= 81 no longer has; give the '
            "base config's file path instead, or pip install "
            '"setuptools<81".') from None
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.get('default_scope') in _COVERED_SCOPES:
        cfg.default_scope = 'mmchansearch'
    return cfg


def check_data_roots(cfg: Config, *dataloaders: str) -> None:
    """Refuses a dataset of the named dataloaders whose ``data_root`` is
    not a directory, before any dataset is built.

    Without this, a wrong ``data_root`` ends in the dataset's own traceback
    (``FileNotFoundError``), or in a download attempt (mmpretrain's CIFAR
    and MNIST datasets).

    Args:
        cfg: the tool's config.
        dataloaders: dotted keys of dataloader configs, e.g.
            ``'train_dataloader'`` or ``'search_loop.dataloader'``; keys the
            config lacks (or sets to None) are skipped.

    Raises:
        ConfigError: naming the key of the first missing ``data_root``.
    """
    for key in dataloaders:
        first, *rest = key.split('.')
        node = cfg.get(first)
        for part in rest:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            _check_dataset_roots(node.get('dataset'), f'{key}.dataset')


def _check_dataset_roots(dataset, key: str) -> None:
    """The check of :func:`check_data_roots` for one dataset config and
    the datasets it wraps (``dataset=``, ``datasets=[...]``)."""
    if not isinstance(dataset, dict):
        return
    root = dataset.get('data_root')
    if isinstance(root, str) and root and '://' not in root \
            and not osp.isdir(root):
        raise ConfigError(
            f'{key}.data_root={root!r}: no such directory; point it at '
            f'your data (--cfg-options {key}.data_root=DIR).')
    _check_dataset_roots(dataset.get('dataset'), f'{key}.dataset')
    for i, inner in enumerate(dataset.get('datasets') or []):
        _check_dataset_roots(inner, f'{key}.datasets.{i}')


def add_supernet_args(parser: argparse.ArgumentParser) -> None:
    """CONFIG, --shape H W and --cfg-options, as the analysis tools take."""
    parser.add_argument('config', help='toolbox or plain mmpretrain config')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size used to trace the model (default: '
                        "the mutator's input_shape, else 224 224)")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, xxx=yyy')
    add_strict_arg(parser)


def add_strict_arg(parser: argparse.ArgumentParser) -> None:
    """--strict: a channel_cfg whose meta disagrees with the model (input
    shape, params, FLOPs) is an error, not a warning."""
    parser.add_argument('--strict', action='store_true',
                        help='refuse a channel_cfg whose meta (input shape, '
                        'params, FLOPs) disagrees with this model instead '
                        'of warning')


def refuse_overwriting_inputs(outputs: Sequence[str | None],
                              inputs: Sequence[str | None]) -> None:
    """An output path that is one of the command's inputs is an error (it
    would be replaced before, or instead of, being read)."""
    for out in filter(None, outputs):
        for source in filter(None, inputs):
            if os.path.exists(out) and os.path.exists(source) and \
                    os.path.samefile(out, source):
                raise ConfigError(f'{out} is an input of this command; '
                                  'write to another file.')


def input_shape_of(cfg: Config, hw: Sequence[int] | None
                   ) -> tuple[int, ...] | None:
    """(C, H, W) for ``--shape H W``, keeping the config's channel count."""
    if hw is None:
        return None
    mutator = cfg.model.get('mutator') or {}
    channels = tuple(mutator.get('input_shape', (3, )))[0]
    return (channels, *hw)


def supernet_from_args(args: argparse.Namespace):
    """(cfg, supernet) for the arguments of :func:`add_supernet_args`."""
    from .supernet import build_supernet
    cfg = load_config(args.config, args.cfg_options)
    supernet = build_supernet(cfg, input_shape_of(cfg, args.shape))
    supernet.mutator.strict_meta = getattr(args, 'strict', False)
    return cfg, supernet


def add_runner_args(parser: argparse.ArgumentParser,
                    work_dir_help: str) -> None:
    """--work-dir, --cfg-options, --launcher, --local-rank (mmengine's)."""
    parser.add_argument('--work-dir', help=work_dir_help)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, xxx=yyy')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def runner_config(args: argparse.Namespace) -> Config:
    """The config of a Runner tool, with the arguments of
    :func:`add_runner_args` applied (work dir: ./work_dirs/<config name>)."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.launcher == 'pytorch':
        _init_cpu_process_group()
    if os.environ.get('RANK', '0') == '0' and osp.isdir(cfg.work_dir):
        from .fileio import remove_stale_temp_files
        removed = remove_stale_temp_files(cfg.work_dir)
        if removed:
            print(f'removed {len(removed)} temporary file(s) left by killed '
                  f'writes in {cfg.work_dir}', file=sys.stderr)
    return cfg


def _init_cpu_process_group() -> None:
    """Starts the gloo process group of a CPU-only ``torchrun`` launch.

    mmengine's pytorch launcher always selects a CUDA device; on a machine
    without one the group is started here (gloo, from torchrun's
    environment), and the Runner then uses it as it is.
    """
    import torch
    import torch.distributed as torch_dist
    if torch.cuda.is_available() or torch_dist.is_initialized():
        return
    torch_dist.init_process_group(backend='gloo')


def run_tool(main: Callable[[], None]) -> None:
    """Runs a tool's ``main``; user errors print one line, no traceback.

    Installs the toolbox's checkpoint I/O in mmengine first (atomic writes,
    loads that run no code: :func:`mmchansearch.fileio.install_checkpoint_io`).
    """
    from .fileio import install_checkpoint_io
    install_checkpoint_io()
    try:
        main()
    except ChannelSearchError as err:
        print(f'error: {err}', file=sys.stderr)
        sys.exit(2)
