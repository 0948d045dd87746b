"""What every tools/ script shares: arguments, config loading, user errors."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from mmengine.config import Config, DictAction

from .errors import ChannelSearchError, ConfigError

__all__ = ['DictAction', 'add_supernet_args', 'load_config',
           'supernet_from_args', 'run_tool']


def load_config(path: str, cfg_options: dict | None = None) -> Config:
    """Reads a config file and merges ``--cfg-options``."""
    try:
        cfg = Config.fromfile(path)
    except FileNotFoundError:
        raise ConfigError(f'config {path}: no such file.') from None
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def add_supernet_args(parser: argparse.ArgumentParser) -> None:
    """CONFIG, --shape H W and --cfg-options, as the analysis tools take."""
    parser.add_argument('config', help='toolbox or plain mmpretrain config')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size used to trace the model (default: '
                        "the mutator's input_shape, else 224 224)")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, xxx=yyy')


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
    return cfg, build_supernet(cfg, input_shape_of(cfg, args.shape))


def run_tool(main: Callable[[], None]) -> None:
    """Runs a tool's ``main``; user errors print one line, no traceback."""
    try:
        main()
    except ChannelSearchError as err:
        print(f'error: {err}', file=sys.stderr)
        sys.exit(2)
