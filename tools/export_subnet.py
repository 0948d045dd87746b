"""Exports a subnet as a physically smaller static model (and ONNX).

A channel_cfg with a ``resolution`` (a DMaskingNAS resolution search) is
exported, counted and checked at that input size unless --shape is given.

Example:
    python tools/export_subnet.py CONFIG --channel-cfg subnet.yaml \
        --checkpoint supernet.pth -o subnet.pth --onnx subnet.onnx
"""
import argparse
import os

from mmchansearch.channel_cfg import load_channel_cfg
from mmchansearch.cli import add_supernet_args, run_tool, supernet_from_args
from mmchansearch.export import (
    export_onnx,
    export_subnet,
    save_static_checkpoint,
)
from mmchansearch.supernet import load_supernet_weights


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_supernet_args(parser)
    parser.add_argument('--channel-cfg', required=True,
                        help='channel_cfg YAML of the subnet')
    parser.add_argument('--checkpoint', help='supernet (or plain model) '
                        'checkpoint; random weights without it')
    parser.add_argument('-o', '--out', required=True,
                        help='static checkpoint to write (.pth)')
    parser.add_argument('--onnx', help='also write this ONNX file')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    channel_cfg = load_channel_cfg(args.channel_cfg)
    if channel_cfg.resolution and args.shape is None:
        args.shape = [channel_cfg.resolution] * 2
    _, supernet = supernet_from_args(args)
    if args.checkpoint:
        load_supernet_weights(supernet, args.checkpoint)
    mutator = supernet.mutator
    full = mutator.estimate(mutator.max_widths)
    static = export_subnet(supernet, channel_cfg)
    usage = mutator.estimate()
    save_static_checkpoint(static, channel_cfg, mutator.input_shape, args.out)
    print(f'FLOPs {full["flops"] / 1e6:.2f}M -> {usage["flops"] / 1e6:.2f}M, '
          f'params {full["params"] / 1e6:.3f}M -> '
          f'{usage["params"] / 1e6:.3f}M')
    print(f'wrote {args.out} ({os.path.getsize(args.out) / 1e6:.2f} MB)')
    if args.onnx:
        error = export_onnx(static, mutator.input_shape, args.onnx)
        print(f'wrote {args.onnx}; onnxruntime vs torch max |diff| '
              f'{error:.2e}')


if __name__ == '__main__':
    run_tool(main)
