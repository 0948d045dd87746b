"""Rescales a searched channel_cfg to the FLOPs of a uniformly scaled net.

Network Adjustment's "searched 0.8x": the adjusted widths are rescaled to
the FLOPs of the original network with every group at 0.8x its width, so the
two compare at equal FLOPs. Writes both.

Example:
    python tools/scale_channel_cfg.py CONFIG final.yaml --scale 0.8 \
        -o final_x0.8.yaml --uniform-out uniform_x0.8.yaml
"""
import argparse

from mmchansearch.channel_cfg import (
    load_channel_cfg,
    save_channel_cfg,
    validate_channels,
)
from mmchansearch.cli import (
    add_supernet_args,
    refuse_overwriting_inputs,
    run_tool,
    supernet_from_args,
)
from mmchansearch.engine.network_adjustment_search import scaled_variant


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_supernet_args(parser)
    parser.add_argument('channel_cfg', help='the searched channel_cfg')
    parser.add_argument('--scale', type=float, required=True,
                        help='width multiplier of the uniform network, '
                        'e.g. 0.8')
    parser.add_argument('--reference',
                        help='channel_cfg of the network to scale uniformly '
                        "(default: the config's original model)")
    parser.add_argument('-o', '--out', required=True, help='YAML to write')
    parser.add_argument('--uniform-out',
                        help='also write the uniformly scaled network here')
    return parser.parse_args()


def _save(mutator, choices, path: str, config: str, source: str) -> None:
    cfg = mutator.channel_config(choices, config, source)
    save_channel_cfg(cfg, path, mutator.max_widths)
    print(f'{path}: FLOPs {cfg.meta["flops"] / 1e6:.3f}M, params '
          f'{cfg.meta["params"] / 1e6:.3f}M')


def main() -> None:
    args = parse_args()
    refuse_overwriting_inputs([args.out, args.uniform_out],
                              [args.channel_cfg, args.reference, args.config])
    _, supernet = supernet_from_args(args)
    mutator = supernet.mutator
    searched = load_channel_cfg(args.channel_cfg)
    validate_channels(searched, mutator.max_widths, mutator.divisors)
    mutator.check_meta(searched)
    reference = mutator.original_widths
    if args.reference:
        reference_cfg = load_channel_cfg(args.reference)
        validate_channels(reference_cfg, mutator.max_widths,
                          mutator.divisors)
        reference = reference_cfg.channels
    scaled, uniform = scaled_variant(mutator, searched.channels, reference,
                                     args.scale)
    _save(mutator, scaled, args.out, args.config,
          f'{args.channel_cfg} rescaled to the FLOPs of the uniform '
          f'x{args.scale:g} network')
    if args.uniform_out:
        _save(mutator, uniform, args.uniform_out, args.config,
              f'every group x{args.scale:g}')


if __name__ == '__main__':
    run_tool(main)
