"""Trains a model (supernet, searched subnets, or any mmpretrain model).

Examples:
    python tools/train.py CONFIG --work-dir DIR
    python tools/train.py CONFIG --resume            # latest checkpoint
    python tools/train.py SUBNET_CONFIG --cfg-options \
        model.channel_cfgs=a.yaml,b.yaml,c.yaml
    bash tools/dist_train.sh CONFIG 8                # 8 processes
"""
import argparse
import os
import os.path as osp

from mmengine.runner import Runner

import mmchansearch.engine  # noqa: F401  (registers loops and hooks)
import mmchansearch.models  # noqa: F401  (registers algorithms)
from mmchansearch.cli import DictAction, load_config, run_tool


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='train config file')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CHECKPOINT, or from the latest '
                        'checkpoint of the work dir when no path is given')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the total batch '
                        'size (auto_scale_lr in the config)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, xxx=yyy')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def merge_args(cfg, args):
    """Applies the command-line options to the config."""
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    return cfg


def main() -> None:
    args = parse_args()
    cfg = merge_args(load_config(args.config, args.cfg_options), args)
    runner = Runner.from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    run_tool(main)
