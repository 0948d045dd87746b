"""Runs the search loop of a config (AutoSlim greedy search and others).

Examples:
    python tools/search.py SEARCH_CONFIG SUPERNET_CKPT --work-dir DIR
    python tools/search.py SEARCH_CONFIG SUPERNET_CKPT --work-dir DIR --resume
    python tools/search.py configs/network_adjustment/CONFIG --work-dir DIR
"""
import argparse

from mmengine.runner import Runner

import mmchansearch.engine  # noqa: F401  (registers loops and hooks)
import mmchansearch.models  # noqa: F401  (registers algorithms)
from mmchansearch.checkpoint import newest_complete_checkpoint
from mmchansearch.cli import (
    add_runner_args,
    check_data_roots,
    run_tool,
    runner_config,
)
from mmchansearch.errors import ConfigError
from mmchansearch.registry import LOOPS


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='search config (has `search_loop`)')
    parser.add_argument('checkpoint', nargs='?',
                        help='weights the search starts from: the trained '
                        'supernet (AutoSlim), or the pretrained network '
                        '(Network Adjustment, optional)')
    parser.add_argument('--resume', action='store_true',
                        help='continue a killed search from its saved state')
    parser.add_argument('--force', action='store_true',
                        help='start over although the work dir holds an '
                        'earlier search (its results are overwritten)')
    add_runner_args(parser, 'where results and state go')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = runner_config(args)
    if args.resume and args.force:
        raise ConfigError('--resume continues the earlier search and '
                          '--force starts over; give one of them.')
    if cfg.get('search_loop') is None:
        raise ConfigError(f'config {args.config} has no `search_loop`; use '
                          'a search config (e.g. configs/autoslim/'
                          '*_search_*.py).')
    check_data_roots(cfg, 'search_loop.dataloader')
    cfg.resume = args.resume  # loops that train resume through mmengine
    if args.resume:  # a stale last_checkpoint (a kill mid-save): the newest
        cfg.load_from = newest_complete_checkpoint(cfg.work_dir)
    runner = Runner.from_cfg(cfg)
    loop = LOOPS.build(cfg.search_loop, default_args=dict(
        runner=runner, checkpoint=args.checkpoint, resume=args.resume,
        force=args.force,
        model_name=args.config))
    loop.run()


if __name__ == '__main__':
    run_tool(main)
