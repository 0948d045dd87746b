"""Plots channel_cfgs per group, relative to the supernet's widths.

Example:
    python tools/plot_channels.py CONFIG a.yaml b.yaml -o channels.png
"""
import argparse
import os.path as osp

from mmchansearch.channel_cfg import load_channel_cfg, validate_channels
from mmchansearch.cli import add_supernet_args, run_tool, supernet_from_args
from mmchansearch.visualization import plot_channel_configs


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_supernet_args(parser)
    parser.add_argument('channel_cfgs', nargs='+', help='channel_cfg YAMLs')
    parser.add_argument('-o', '--out', required=True, help='PNG to write')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    configs = [load_channel_cfg(p) for p in args.channel_cfgs]
    _, supernet = supernet_from_args(args)
    max_widths = supernet.mutator.max_widths
    for cfg in configs:
        validate_channels(cfg, max_widths, supernet.mutator.divisors)
        supernet.mutator.check_meta(cfg)
    plot_channel_configs(
        {osp.splitext(osp.basename(c.source))[0]: c.channels
         for c in configs}, max_widths, args.out)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    run_tool(main)
