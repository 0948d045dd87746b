"""Searched vs uniform-width subnets at equal FLOPs, over several seeds.

Each seed runs the whole AutoSlim pipeline (tools/demo_autoslim.py: supernet,
greedy search, joint retraining of the searched subnets and of the uniform
networks of the same FLOPs with the same recipe, split, test); the table
gives top-1 mean +- std per FLOPs target.

Example (the full Fashion-MNIST recipe; add --parallel on a GPU machine):
    python benchmarks/bench_autoslim_quality.py --seeds 0 1 2 \
        --config-prefix autoslim_mbv2_1.0x \
        --config-suffix 1xb64_fashion-mnist.py --work-dir work_dirs/quality
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys

from quality_runs import mean_std


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--config-prefix', default='autoslim_mbv2_0.5x')
    parser.add_argument('--config-suffix',
                        default='1xb128_fashion-mnist-demo.py')
    parser.add_argument('--work-dir', default='work_dirs/autoslim_quality')
    parser.add_argument('--parallel', action='store_true',
                        help='run the seeds at the same time')
    parser.add_argument('--resume', action='store_true',
                        help='keep seeds that already have results')
    parser.add_argument('--cfg-options', nargs='*', default=[])
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    processes, outputs = [], []
    for seed in args.seeds:
        work_dir = osp.join(args.work_dir, f'seed{seed}')
        out = osp.join(args.work_dir, f'seed{seed}.json')
        outputs.append(out)
        if args.resume and osp.isfile(out):
            continue
        command = [sys.executable, 'tools/demo_autoslim.py', '--work-dir',
                   work_dir, '--seed', str(seed), '--json-out', out,
                   '--config-prefix', args.config_prefix, '--config-suffix',
                   args.config_suffix, '--cfg-options', *args.cfg_options]
        os.makedirs(args.work_dir, exist_ok=True)
        log = open(osp.join(args.work_dir, f'seed{seed}.log'), 'w')
        process = subprocess.Popen(command, stdout=log,
                                   stderr=subprocess.STDOUT)
        if not args.parallel:
            process.wait()
        processes.append((seed, process))
    failed = [s for s, p in processes if p.wait() != 0]
    if failed:
        sys.exit(f'seeds {failed} failed; see {args.work_dir}/seed*.log')
    runs = []
    for out in outputs:
        with open(out) as f:
            runs.append(json.load(f))
    print(f'{args.config_prefix}_*_{args.config_suffix}, seeds {args.seeds}')
    print('| target | searched MFLOPs | searched top-1 | uniform MFLOPs | '
          'uniform top-1 | searched - uniform |')
    print('|---|---|---|---|---|---|')
    for i, row in enumerate(runs[0]):
        rows = [run[i] for run in runs]
        gaps = [r['searched_top1'] - r['uniform_top1'] for r in rows]
        searched_flops = statistics.mean(r['searched_flops'] for r in rows)
        uniform_flops = statistics.mean(r['uniform_flops'] for r in rows)
        print(f'| {row["target"]} | {searched_flops / 1e6:.3f} '
              f'| {mean_std([r["searched_top1"] for r in rows])} '
              f'| {uniform_flops / 1e6:.3f} '
              f'| {mean_std([r["uniform_top1"] for r in rows])} '
              f'| {mean_std(gaps)} |')


if __name__ == '__main__':
    main()
