"""Splits a jointly trained slimmable checkpoint into one per subnet.

Each output holds only its subnet's tensors (physically small, loadable
alone with its channel_cfg, which is also stored in the checkpoint meta).

Example:
    python tools/model_converters/split_checkpoint.py SUBNET_CONFIG \
        joint.pth --channel-cfgs a.yaml b.yaml c.yaml
"""
import argparse
import os
import os.path as osp

from mmchansearch.cli import DictAction, load_config, run_tool
from mmchansearch.errors import ConfigError
from mmchansearch.export import save_static_checkpoint
from mmchansearch.supernet import build_supernet, load_supernet_weights


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='the subnet (SlimmableNetwork) config')
    parser.add_argument('checkpoint', help='the joint checkpoint')
    parser.add_argument('--channel-cfgs', nargs='+', required=True,
                        help='channel_cfg YAMLs, in training order')
    parser.add_argument('--out-dir', help='default: the checkpoint folder')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, xxx=yyy')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if len(args.channel_cfgs) < 2:
        raise ConfigError('give the channel_cfgs of every jointly trained '
                          'subnet (two or more), in training order.')
    cfg = load_config(args.config, args.cfg_options)
    cfg.model.channel_cfgs = list(args.channel_cfgs)
    model = build_supernet(cfg, keep_algorithm=True)
    load_supernet_weights(model, args.checkpoint)
    stem = osp.splitext(osp.basename(args.checkpoint))[0]
    out_dir = args.out_dir or osp.dirname(osp.abspath(args.checkpoint))
    exported = []
    for index, (name, channel_cfg) in enumerate(
            zip(model.subnet_names, model.channel_cfgs)):
        model.activate(index)
        exported.append((osp.join(out_dir, f'{stem}_{name}.pth'),
                         model.mutator.export_static(), channel_cfg))
    os.makedirs(out_dir, exist_ok=True)
    for path, static, channel_cfg in exported:
        save_static_checkpoint(static, channel_cfg, model.mutator.input_shape,
                               path)
        print(f'wrote {path} ({osp.getsize(path) / 1e6:.2f} MB)')


if __name__ == '__main__':
    run_tool(main)
