"""Writes the uniform-width channel_cfg that fits a budget.

Every group gets the same fraction of its max width, rounded to
``--divisor`` channels (default 1, so the FLOPs track the budget closely):
the baseline searched networks are compared with.

Example:
    python tools/get_uniform_cfg.py CONFIG --target flops 300e6 -o u300.yaml
"""
import argparse

from mmchansearch.channel_cfg import save_channel_cfg
from mmchansearch.cli import add_supernet_args, run_tool, supernet_from_args


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_supernet_args(parser)
    parser.add_argument('--target', nargs=2, metavar=('METRIC', 'BUDGET'),
                        required=True, help='e.g. flops 300e6 or params 3e6')
    parser.add_argument('--divisor', type=int, default=1,
                        help='round widths to multiples of this (default 1)')
    parser.add_argument('-o', '--out', required=True, help='YAML to write')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    metric, budget = args.target[0], float(args.target[1])
    _, supernet = supernet_from_args(args)
    mutator = supernet.mutator
    ratio, choices = mutator.uniform_for_budget(metric, budget, args.divisor)
    cfg = mutator.channel_config(
        choices, args.config, f'uniform width x{ratio:.4f} (divisor '
        f'{args.divisor}), {metric} budget {budget:g}')
    save_channel_cfg(cfg, args.out, mutator.max_widths)
    print(f'uniform x{ratio:.4f}: FLOPs {cfg.meta["flops"] / 1e6:.3f}M, '
          f'params {cfg.meta["params"] / 1e6:.3f}M -> {args.out}')


if __name__ == '__main__':
    run_tool(main)
