"""Runs the whole AutoSlim pipeline on Fashion-MNIST and prints a table.

The five stages run through the same tools/ commands a user types (each is
printed before it runs): supernet training, greedy search, joint
retraining of the searched subnets, checkpoint split, test. The uniform-
width networks of equal FLOPs are retrained, split and tested the same way,
so the table compares searched and uniform widths under one recipe.

Example:
    python tools/demo_autoslim.py --work-dir work_dirs/autoslim_demo
"""
import argparse
import glob
import json
import os
import os.path as osp
import shlex
import subprocess
import sys
import time

from mmchansearch.channel_cfg import load_channel_cfg

CONFIG_DIR = 'configs/autoslim'
PREFIX = 'autoslim_mbv2_0.5x'
SUFFIX = '1xb64_fashion-mnist-demo.py'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/autoslim_demo')
    parser.add_argument('--config-prefix', default=PREFIX,
                        help='configs/autoslim/<prefix>_{supernet,search,'
                        'subnet}_<suffix>')
    parser.add_argument('--config-suffix', default=SUFFIX)
    parser.add_argument('--cfg-options', nargs='*', default=[],
                        help='extra overrides for every train/search/test '
                        'command (key=value)')
    parser.add_argument('--seed', type=int, default=0,
                        help='randomness.seed of every stage')
    parser.add_argument('--json-out', help='also write the table rows here')
    return parser.parse_args()


def run(args: list, log: list) -> None:
    """Runs one tool, echoing the command and failing loudly."""
    command = [sys.executable] + [str(a) for a in args]
    print('\n$ ' + ' '.join(shlex.quote(c) for c in command[1:]), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    log.append((' '.join(str(a) for a in args[:1]),
                time.perf_counter() - start))


def config(args, stage: str) -> str:
    return osp.join(CONFIG_DIR,
                    f'{args.config_prefix}_{stage}_{args.config_suffix}')


def options(args, *extra: str) -> list[str]:
    return ['--cfg-options', *extra, f'randomness.seed={args.seed}',
            *args.cfg_options]


def retrain_split_test(args, name: str, cfg_paths: list[str],
                       log: list) -> dict[str, dict]:
    """Stages 3-5 for one set of channel_cfgs; returns metrics per cfg."""
    work_dir = osp.join(args.work_dir, name)
    subnet_cfg = config(args, 'subnet')
    run(['tools/train.py', subnet_cfg, '--work-dir', work_dir,
         *options(args, 'model.channel_cfgs=' + ','.join(cfg_paths))], log)
    checkpoint = _last_checkpoint(work_dir)
    run(['tools/model_converters/split_checkpoint.py', subnet_cfg, checkpoint,
         '--channel-cfgs', *cfg_paths], log)
    results = {}
    for path in cfg_paths:
        stem = osp.splitext(osp.basename(path))[0]
        split = checkpoint.replace('.pth', f'_{stem}.pth')
        out = osp.join(work_dir, f'test_{stem}.json')
        run(['tools/test.py', subnet_cfg, split, '--work-dir', work_dir,
             '--out', out, *options(args, f'model.channel_cfgs={path}')], log)
        with open(out) as f:
            results[path] = json.load(f)
    return results


def _last_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def main() -> None:
    args = parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    log: list = []
    start = time.perf_counter()
    supernet_dir = osp.join(args.work_dir, 'supernet')
    run(['tools/train.py', config(args, 'supernet'), '--work-dir',
         supernet_dir, *options(args)], log)
    search_dir = osp.join(args.work_dir, 'search')
    run(['tools/search.py', config(args, 'search'),
         _last_checkpoint(supernet_dir), '--work-dir', search_dir,
         *options(args)], log)
    searched = sorted(glob.glob(osp.join(search_dir, 'subnet_*.yaml')),
                      key=lambda p: -load_channel_cfg(p).meta['flops'])
    uniform = []
    for path in searched:
        out = osp.join(args.work_dir, 'uniform',
                       'uniform_' + osp.basename(path).split('_', 1)[1])
        flops = load_channel_cfg(path).meta['flops']
        run(['tools/get_uniform_cfg.py', config(args, 'supernet'),
             '--target', 'flops', repr(flops), '-o', out, *options(args)],
            log)
        uniform.append(out)
    searched_results = retrain_split_test(args, 'retrain_searched', searched,
                                          log)
    uniform_results = retrain_split_test(args, 'retrain_uniform', uniform,
                                         log)
    run(['tools/plot_channels.py', config(args, 'supernet'), *searched,
         *uniform, '-o', osp.join(args.work_dir, 'channels.png'),
         *options(args)], log)
    rows = table_rows(searched, searched_results, uniform, uniform_results)
    print_table(rows)
    if args.json_out:
        with open(args.json_out, 'w') as f:
            json.dump(rows, f, indent=1)
    print(f'\nwhole pipeline: {time.perf_counter() - start:.0f} s; '
          f'outputs in {args.work_dir}')
    for command, seconds in log:
        print(f'  {seconds:6.1f} s  {command}')


def table_rows(searched, searched_results, uniform,
               uniform_results) -> list[dict]:
    """Searched subnets next to the uniform-width ones of equal FLOPs."""
    rows = []
    for s_path, u_path in zip(searched, uniform):
        s, u = load_channel_cfg(s_path).meta, load_channel_cfg(u_path).meta
        rows.append(dict(
            target=osp.splitext(osp.basename(s_path))[0].split('-', 1)[1],
            searched_flops=s['flops'], searched_params=s['params'],
            searched_top1=searched_results[s_path]['accuracy/top1'],
            uniform_flops=u['flops'], uniform_params=u['params'],
            uniform_top1=uniform_results[u_path]['accuracy/top1']))
    return rows


def print_table(rows: list[dict]) -> None:
    print('\n| target | searched FLOPs | params | top-1 | uniform FLOPs '
          '| params | top-1 |')
    print('|---|---|---|---|---|---|---|')
    for r in rows:
        print(f'| {r["target"]} | {r["searched_flops"] / 1e6:.3f}M | '
              f'{r["searched_params"] / 1e6:.3f}M | '
              f'{r["searched_top1"]:.2f} | {r["uniform_flops"] / 1e6:.3f}M | '
              f'{r["uniform_params"] / 1e6:.3f}M | {r["uniform_top1"]:.2f} |')


if __name__ == '__main__':
    main()
