"""Trains a model (supernet, searched subnets, or any mmpretrain model).

Examples:
    python tools/train.py CONFIG --work-dir DIR
    python tools/train.py CONFIG --resume            # latest checkpoint
    python tools/train.py SUBNET_CONFIG --cfg-options \
        model.channel_cfgs=a.yaml,b.yaml,c.yaml
    bash tools/dist_train.sh CONFIG 8                # 8 processes
"""
import argparse

from mmengine.runner import Runner

import mmchansearch.engine  # noqa: F401  (registers loops and hooks)
import mmchansearch.models  # noqa: F401  (registers algorithms)
from mmchansearch.checkpoint import (
    check_load_from,
    newest_complete_checkpoint,
)
from mmchansearch.cli import (
    add_runner_args,
    check_data_roots,
    run_tool,
    runner_config,
)
from mmchansearch.distributed import unwrap
from mmchansearch.errors import ConfigError


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='train config file')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CHECKPOINT, or from the latest '
                        'checkpoint of the work dir when no path is given')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the total batch '
                        'size (auto_scale_lr in the config)')
    add_runner_args(parser, 'where logs and checkpoints go')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = runner_config(args)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, newest_complete_checkpoint(
            cfg.work_dir)
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg:
            raise ConfigError(
                f'--auto-scale-lr: config {args.config} has no '
                '`auto_scale_lr = dict(base_batch_size=N)` (the total batch '
                'size its learning rate is for); add it or drop the flag.')
        cfg.auto_scale_lr.enable = True
    check_data_roots(cfg, 'train_dataloader', *(
        ['val_dataloader'] if cfg.get('val_cfg') is not None else []))
    runner = Runner.from_cfg(cfg)
    if cfg.get('load_from') and not cfg.get('resume'):
        check_load_from(unwrap(runner.model), cfg.load_from)
    runner.train()


if __name__ == '__main__':
    run_tool(main)
