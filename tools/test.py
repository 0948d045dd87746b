"""Tests a model: a searched subnet, a joint slimmable model, or a supernet.

Examples:
    python tools/test.py SUBNET_CONFIG subnet.pth \
        --cfg-options model.channel_cfgs=a.yaml
    python tools/test.py SUBNET_CONFIG joint.pth \
        --cfg-options model.channel_cfgs=a.yaml,b.yaml,c.yaml
"""
import argparse
import json

from mmengine.runner import Runner

import mmchansearch.engine  # noqa: F401  (registers loops and hooks)
import mmchansearch.models  # noqa: F401  (registers algorithms)
from mmchansearch.checkpoint import (
    load_state_strictly,
    read_checkpoint,
    state_dict_of,
)
from mmchansearch.cli import (
    add_runner_args,
    check_data_roots,
    run_tool,
    runner_config,
)
from mmchansearch.distributed import unwrap
from mmchansearch.fileio import atomic_write_text
from mmchansearch.models.algorithms import ChannelSupernet
from mmchansearch.supernet import load_supernet_weights


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='test config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='write the metrics to this JSON file')
    add_runner_args(parser, 'where logs go')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = runner_config(args)
    cfg.load_from = None  # loaded below, strictly, with clear errors
    check_data_roots(cfg, 'test_dataloader')
    runner = Runner.from_cfg(cfg)
    model = unwrap(runner.model)
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
