"""Prints FLOPs (conv + linear multiply-accumulates) and params of a model.

Examples:
    python tools/get_flops.py CONFIG
    python tools/get_flops.py CONFIG --channel-cfg subnet.yaml --shape 224 224

A channel_cfg with a ``resolution`` is counted at that input size unless
--shape is given.
"""
import argparse

from mmchansearch.channel_cfg import load_channel_cfg
from mmchansearch.cli import add_supernet_args, run_tool, supernet_from_args
from mmchansearch.export import export_subnet, static_usage
from mmchansearch.models.backbones import FBNetV2SearchSpace


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_supernet_args(parser)
    parser.add_argument('--channel-cfg', help='channel_cfg YAML of a subnet '
                        '(default: the full model)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    channel_cfg = load_channel_cfg(args.channel_cfg) \
        if args.channel_cfg else None
    if channel_cfg is not None and channel_cfg.resolution \
            and args.shape is None:
        args.shape = [channel_cfg.resolution] * 2
    _, supernet = supernet_from_args(args)
    mutator = supernet.mutator
    full = mutator.estimate(mutator.max_widths)
    c, h, w = mutator.input_shape
    print(f'input shape: {c}x{h}x{w}; FLOPs = conv + linear multiply-'
          'accumulates')
    print(f'full model: FLOPs {full["flops"] / 1e6:.2f}M, '
          f'params {full["params"] / 1e6:.3f}M')
    if channel_cfg is not None and channel_cfg.blocks and isinstance(
            getattr(supernet.architecture, 'backbone', None),
            FBNetV2SearchSpace):  # the supernet holds every kernel
        sub = static_usage(export_subnet(supernet, channel_cfg),
                           mutator.input_shape)
        print(f'{args.channel_cfg}: FLOPs {sub["flops"] / 1e6:.2f}M, '
              f'params {sub["params"] / 1e6:.3f}M (its kernels, widths '
              'and resolution)')
    elif channel_cfg is not None:
        mutator.set_choices(channel_cfg)
        sub = mutator.estimate()
        print(f'{args.channel_cfg}: FLOPs {sub["flops"] / 1e6:.2f}M '
              f'({sub["flops"] / full["flops"]:.1%}), params '
              f'{sub["params"] / 1e6:.3f}M '
              f'({sub["params"] / full["params"]:.1%})')


if __name__ == '__main__':
    run_tool(main)
