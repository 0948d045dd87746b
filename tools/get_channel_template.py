"""Writes the channel_cfg template of a model: every group at its max width.

Example:
    python tools/get_channel_template.py CONFIG -o channels.yaml
"""
import argparse

from mmchansearch.channel_cfg import ChannelConfig, save_channel_cfg
from mmchansearch.cli import add_supernet_args, run_tool, supernet_from_args
from mmchansearch.errors import ConfigError


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_supernet_args(parser)
    parser.add_argument('-o', '--out', required=True, help='YAML to write')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    _, supernet = supernet_from_args(args)
    mutator = supernet.mutator
    if not mutator.widths:
        raise ConfigError(
            f'{args.config}: the model has no searchable channel group, so '
            'there is no template to write; channels kept fixed: '
            + ('; '.join(mutator.analysis.fixed) or 'every layer feeds the '
               'model input or output'))
    mutator.set_max()
    usage = mutator.estimate()
    meta = dict(model=args.config, input_shape=list(mutator.input_shape),
                flops=usage['flops'], params=usage['params'],
                source='template: every group at its max width')
    save_channel_cfg(ChannelConfig(mutator.current_choices(), meta),
                     args.out, mutator.max_widths)
    print(f'wrote {len(mutator.widths)} groups to {args.out}')
    for reason in mutator.analysis.fixed:
        print(f'fixed (not searchable): {reason}')


if __name__ == '__main__':
    run_tool(main)
