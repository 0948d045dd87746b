"""Exports a subnet as a physically smaller static model (and ONNX).

Takes every checkpoint the pipelines write: a split or exported subnet
(its channel_cfg is in the checkpoint), a retrained subnet or a joint
retraining (``tools/train.py`` with a subnet config; ``--subnet`` picks one
of a joint checkpoint), or a supernet / plain model with ``--channel-cfg``.
A channel_cfg with a ``resolution`` (a DMaskingNAS resolution search) is
exported, counted and checked at that input size unless --shape is given.
The ONNX file is checked against PyTorch in onnxruntime; ``--benchmark``
times it (and the unpruned network) in onnxruntime.

Examples:
    python tools/export_subnet.py SUBNET_CONFIG \
        --checkpoint epoch_3_subnet_flops-1M.pth -o subnet.pth \
        --onnx subnet.onnx --benchmark
    python tools/export_subnet.py CONFIG --checkpoint supernet.pth \
        --channel-cfg subnet.yaml -o subnet.pth --onnx subnet.onnx
"""
import argparse
import os
import sys
import tempfile

from mmchansearch.channel_cfg import load_channel_cfg
from mmchansearch.cli import (
    add_supernet_args,
    input_shape_of,
    load_config,
    refuse_overwriting_inputs,
    run_tool,
)
from mmchansearch.errors import CheckpointMismatchError, ConfigError
from mmchansearch.export import (
    export_onnx,
    export_subnet,
    onnx_latency,
    save_static_checkpoint,
    static_model_from_checkpoint,
    static_usage,
)
from mmchansearch.supernet import build_supernet

# onnxruntime vs torch: the largest |difference| of logits accepted
ONNX_TOLERANCE = 1e-3


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_supernet_args(parser)
    parser.add_argument('--checkpoint', help='any checkpoint of the run '
                        '(see above); without it the weights are random')
    parser.add_argument('--channel-cfg', help='channel_cfg YAML of the '
                        'subnet; optional when the checkpoint holds one')
    parser.add_argument('--subnet', help='name or index of the subnet of a '
                        'joint retraining checkpoint')
    parser.add_argument('-o', '--out', required=True,
                        help='static checkpoint to write (.pth)')
    parser.add_argument('--onnx', help='also write this ONNX file')
    parser.add_argument('--benchmark', action='store_true',
                        help='time the ONNX file and the unpruned network '
                        'in onnxruntime (needs --onnx)')
    parser.add_argument('--batch-size', type=int, default=None,
                        help='with --benchmark: also time this batch size')
    return parser.parse_args()


def check_paths(args) -> None:
    refuse_overwriting_inputs(
        [args.out, args.onnx], [args.checkpoint, args.channel_cfg,
                                args.config])
    if args.benchmark and not args.onnx:
        raise ConfigError('--benchmark times the ONNX file; add --onnx '
                          'PATH.')


def main() -> None:
    args = parse_args()
    check_paths(args)
    cfg = load_config(args.config, args.cfg_options)
    channel_cfg = load_channel_cfg(args.channel_cfg) \
        if args.channel_cfg else None
    if channel_cfg is not None and channel_cfg.resolution and \
            args.shape is None:
        args.shape = [channel_cfg.resolution] * 2
    shape = input_shape_of(cfg, args.shape)
    if args.checkpoint:
        static, channel_cfg, supernet = static_model_from_checkpoint(
            cfg, args.checkpoint, channel_cfg, args.subnet, shape,
            strict_meta=args.strict)
    else:
        if channel_cfg is None:
            raise CheckpointMismatchError(
                'give --checkpoint (the trained weights) and/or '
                '--channel-cfg (the subnet\'s widths).')
        print('warning: no --checkpoint given: the exported model has '
              'RANDOM weights (fine for counting and latency, useless for '
              'predictions).', file=sys.stderr)
        supernet = build_supernet(cfg, shape, channel_cfg=channel_cfg)
        supernet.mutator.strict_meta = args.strict
        static = export_subnet(supernet, channel_cfg)
    mutator = supernet.mutator
    input_shape = mutator.input_shape
    if channel_cfg.resolution and args.shape is None:
        input_shape = (input_shape[0], channel_cfg.resolution,
                       channel_cfg.resolution)
    save_static_checkpoint(static, channel_cfg, mutator.input_shape, args.out)
    if channel_cfg.blocks:  # the supernet holds every block candidate
        usage = static_usage(static, input_shape)
        print(f'FLOPs {usage["flops"] / 1e6:.3f}M, params '
              f'{usage["params"] / 1e6:.3f}M (the static network)')
    else:
        full = mutator.estimate(mutator.max_widths)
        usage = mutator.estimate(channel_cfg.channels)
        print(f'FLOPs {full["flops"] / 1e6:.3f}M -> '
              f'{usage["flops"] / 1e6:.3f}M, params '
              f'{full["params"] / 1e6:.3f}M -> {usage["params"] / 1e6:.3f}M')
    print(f'wrote {args.out} ({os.path.getsize(args.out) / 1e6:.2f} MB)')
    if not args.onnx:
        return
    error = export_onnx(static, input_shape, args.onnx)
    print(f'wrote {args.onnx}; onnxruntime vs torch max |diff| {error:.2e}')
    if not error <= ONNX_TOLERANCE:
        raise CheckpointMismatchError(
            f'{args.onnx}: onnxruntime differs from PyTorch by {error:.2e} '
            f'(> {ONNX_TOLERANCE}); the export is not faithful, do not '
            'deploy it (report the model and opset).')
    if args.benchmark:
        benchmark(supernet, input_shape, args)


def benchmark(supernet, input_shape, args) -> None:
    """onnxruntime latency of the export and of the unpruned network,
    measured alternately (median of rounds)."""
    supernet.mutator.set_max()
    with tempfile.TemporaryDirectory() as tmp:
        full_path = os.path.join(tmp, 'unpruned.onnx')
        export_onnx(supernet.mutator.export_static().eval(), input_shape,
                    full_path)
        for batch in sorted({1, args.batch_size or 1}):
            times = {'subnet': [], 'unpruned': []}
            for _ in range(5):
                times['subnet'].append(onnx_latency(args.onnx, input_shape,
                                                    batch))
                times['unpruned'].append(onnx_latency(full_path,
                                                      input_shape, batch))
            sub = sorted(times['subnet'])[2]
            unpruned = sorted(times['unpruned'])[2]
            print(f'onnxruntime latency, batch {batch}: subnet {sub:.3f} ms, '
                  f'unpruned {unpruned:.3f} ms ({unpruned / sub:.2f}x)')


if __name__ == '__main__':
    run_tool(main)
