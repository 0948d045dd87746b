"""Runs the search loop of a config (AutoSlim greedy search and others).

Examples:
    python tools/search.py SEARCH_CONFIG SUPERNET_CKPT --work-dir DIR
    python tools/search.py SEARCH_CONFIG SUPERNET_CKPT --work-dir DIR --resume
"""
import argparse
import os
import os.path as osp

from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

import mmchansearch.engine  # noqa: F401  (registers loops and hooks)
import mmchansearch.models  # noqa: F401  (registers algorithms)
from mmchansearch.cli import DictAction, load_config, run_tool
from mmchansearch.errors import ConfigError
from mmchansearch.registry import LOOPS
from mmchansearch.supernet import load_supernet_weights


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='search config (has `search_loop`)')
    parser.add_argument('checkpoint', nargs='?',
                        help='trained supernet checkpoint, when the method '
                        'needs one')
    parser.add_argument('--work-dir', help='where results and state go')
    parser.add_argument('--resume', action='store_true',
                        help='continue a killed search from its saved state')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, xxx=yyy')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    if 'search_loop' not in cfg:
        raise ConfigError(f'config {args.config} has no `search_loop`; use '
                          'a search config (e.g. configs/autoslim/'
                          '*_search_*.py).')
    cfg.launcher = args.launcher
    cfg.load_from, cfg.resume = None, False
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs', osp.splitext(osp.basename(args.config))[0])
    runner = Runner.from_cfg(cfg)
    model = runner.model.module if is_model_wrapper(runner.model) \
        else runner.model
    if args.checkpoint:
        load_supernet_weights(model, args.checkpoint)
    loop = LOOPS.build(cfg.search_loop, default_args=dict(
        runner=runner, resume=args.resume, model_name=args.config))
    loop.run()


if __name__ == '__main__':
    run_tool(main)
