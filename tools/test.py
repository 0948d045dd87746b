"""Tests a model: a searched subnet, a joint slimmable model, or a supernet.

Examples:
    python tools/test.py SUBNET_CONFIG subnet.pth \
        --cfg-options model.channel_cfgs=a.yaml
    python tools/test.py SUBNET_CONFIG joint.pth \
        --cfg-options model.channel_cfgs=a.yaml,b.yaml,c.yaml
"""
import argparse
import json
import os
import os.path as osp

from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

import mmchansearch.engine  # noqa: F401  (registers loops and hooks)
import mmchansearch.models  # noqa: F401  (registers algorithms)
from mmchansearch.cli import DictAction, load_config, run_tool
from mmchansearch.fileio import atomic_write_text
from mmchansearch.models.algorithms import ChannelSupernet
from mmchansearch.supernet import (
    load_state_strictly,
    load_supernet_weights,
    read_checkpoint,
    state_dict_of,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='test config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where logs go')
    parser.add_argument('--out', help='write the metrics to this JSON file')
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
    cfg.launcher = args.launcher
    cfg.load_from = None  # loaded below, strictly, with clear errors
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs', osp.splitext(osp.basename(args.config))[0])
    runner = Runner.from_cfg(cfg)
    model = runner.model.module if is_model_wrapper(runner.model) \
        else runner.model
    if isinstance(model, ChannelSupernet):
        load_supernet_weights(model, args.checkpoint)
    else:
        load_state_strictly(model, state_dict_of(
            read_checkpoint(args.checkpoint)), args.checkpoint)
    metrics = runner.test()
    if args.out:
        atomic_write_text(args.out, json.dumps(metrics, indent=1))


if __name__ == '__main__':
    run_tool(main)
