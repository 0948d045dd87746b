"""Searched vs uniform-width subnets at equal FLOPs, over several seeds.

Each seed runs the main job (tools/demo_autoslim.py: supernet, greedy
search, every searched subnet and the uniform network of the same FLOPs
retrained with the same start and recipe, tested, exported); prints the
per-seed rows and, per FLOPs target, searched - uniform top-1 mean +- std.
Resumable: a killed run started again with --resume keeps finished seeds
and the demo skips the finished stages of the others.

Example (the main job's recipe, 3 seeds, ~12 minutes each on 2 CPU cores):
    python benchmarks/bench_autoslim_quality.py --seeds 0 1 2 \
        --work-dir work_dirs/autoslim_quality --resume
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys

from quality_runs import mean_std


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--config-prefix', default='autoslim_mbv2_0.5x')
    parser.add_argument('--retrain', choices=['separate', 'joint'],
                        default='separate', help='see tools/demo_autoslim.py')
    parser.add_argument('--start', choices=['supernet', 'scratch'],
                        default='supernet', help='see tools/demo_autoslim.py')
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
                   args.config_suffix, '--retrain', args.retrain,
                   '--start', args.start,
                   '--cfg-options', *args.cfg_options]
        os.makedirs(args.work_dir, exist_ok=True)
        log = open(osp.join(args.work_dir, f'seed{seed}.log'), 'a')
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
    print_results(args, runs)


def print_results(args, runs: list[dict]) -> None:
    """Per-seed rows, then searched - uniform mean +- std per target."""
    print(f'{args.config_prefix}_*_{args.config_suffix}, seeds {args.seeds}')
    print('\n| seed | supernet max / min top-1 | target | searched MFLOPs '
          '| searched params (M) | searched top-1 | uniform MFLOPs '
          '| uniform params (M) | uniform top-1 | searched - uniform |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for seed, run in zip(args.seeds, runs):
        net = run['supernet']
        supernet = (f'{net["max/accuracy/top1"]:.2f} / '
                    f'{net["min/accuracy/top1"]:.2f}')
        for r in run['rows']:
            print(f'| {seed} | {supernet} | {r["target"]} '
                  f'| {r["searched_flops"] / 1e6:.3f} '
                  f'| {r["searched_params"] / 1e6:.3f} '
                  f'| {r["searched_top1"]:.2f} '
                  f'| {r["uniform_flops"] / 1e6:.3f} '
                  f'| {r["uniform_params"] / 1e6:.3f} '
                  f'| {r["uniform_top1"]:.2f} '
                  f'| {r["searched_top1"] - r["uniform_top1"]:+.2f} |')
    print('\n| target | searched top-1 | uniform top-1 | searched - uniform '
          '| seeds searched >= uniform |')
    print('|---|---|---|---|---|')
    for i, row in enumerate(runs[0]['rows']):
        rows = [run['rows'][i] for run in runs]
        gaps = [r['searched_top1'] - r['uniform_top1'] for r in rows]
        print(f'| {row["target"]} '
              f'| {mean_std([r["searched_top1"] for r in rows])} '
              f'| {mean_std([r["uniform_top1"] for r in rows])} '
              f'| {mean_std(gaps)} | {sum(g >= 0 for g in gaps)} of '
              f'{len(gaps)} |')


if __name__ == '__main__':
    main()
