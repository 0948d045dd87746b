"""The main job's greedy search on another width grid, from its supernets.

RESULTS section 6c: with the main job's quarter grid (0.25, 0.5, 0.75, 1)
the searched subnets lead the uniform ones at 0.9M and 0.6M FLOPs but not
at 0.4M, near the floor of the space (0.29M), where every greedy step
removes a quarter of a group. This runs the same greedy search
(configs/autoslim/autoslim_mbv2_0.5x_search_1xb128_fashion-mnist-demo.py,
same held-out images) with ``model.mutator.width_ratios`` = ``--grid`` from
each seed's existing supernet checkpoint, then fine-tunes every searched
subnet and the uniform network of its FLOPs from that supernet with the
main job's recipe (the ``subnet-from-supernet`` config) and tests them.
Only the search's grid differs from section 6c. ``--targets`` searches
for other FLOPs targets; ``--finetune-seeds`` fine-tunes every network
several times (``randomness.seed = SEED + 1000 k``) and takes the mean
(section 6e: one fine-tuning moves a network by 0.3-0.4 points).

Resumable: every tool run is a recorded stage (a killed run started again
skips the finished ones), a finished seed's result is kept.

Example (section 6c's supernets, one thread per run):
    OMP_NUM_THREADS=1 python benchmarks/bench_autoslim_search_grid.py \
        --seeds 0 1 2 --work-dir work_dirs/autoslim_grid8 \
        --supernet 0=work_dirs/autoslim_quality_t1/seed0/supernet/epoch_3.pth \
        --supernet 1=work_dirs/autoslim_quality/seed1/supernet/epoch_3.pth \
        --supernet 2=work_dirs/autoslim_quality/seed2/supernet/epoch_3.pth
"""
import argparse
import glob
import os.path as osp
import statistics

from quality_runs import (
    finetune_from_supernet,
    flops_of,
    mean_std,
    seed_result,
)

from mmchansearch.comparison import ToolRunner

CONFIGS = 'configs/autoslim/autoslim_mbv2_0.5x_{}_1xb128_fashion-mnist-demo.py'
GRID = [0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--supernet', action='append', required=True,
                        metavar='SEED=CHECKPOINT',
                        help='the supernet checkpoint of a seed')
    parser.add_argument('--grid', type=float, nargs='+', default=GRID,
                        help='the search\'s width ratios')
    parser.add_argument('--targets', type=float, nargs='+', default=None,
                        help='the search\'s FLOPs targets (default: the '
                        'config\'s)')
    parser.add_argument('--finetune-seeds', type=int, nargs='+', default=[0],
                        help='k: fine-tune every network with '
                        'randomness.seed = SEED + 1000 k; its top-1 is the '
                        'mean over them')
    parser.add_argument('--work-dir', default='work_dirs/autoslim_grid8')
    return parser.parse_args()


def label_of(channel_cfg: str) -> str:
    """'900K' of '.../subnet_flops-900K.yaml'."""
    return osp.splitext(osp.basename(channel_cfg))[0].split('-')[-1]


def run_seed(args: argparse.Namespace, seed: int, supernet: str) -> dict:
    root = osp.join(args.work_dir, f'seed{seed}')
    runner = ToolRunner(root)
    grid = '[' + ','.join(map(str, args.grid)) + ']'
    targets = [] if args.targets is None else [
        'search_loop.targets=[' + ','.join(map(str, args.targets)) + ']']
    search_dir = osp.join(root, 'search')
    runner.run('search', 'tools/search.py', CONFIGS.format('search'),
               supernet, '--work-dir', search_dir, '--resume',
               '--cfg-options', f'randomness.seed={seed}',
               f'model.mutator.width_ratios={grid}', *targets)
    result = {}
    for searched in sorted(glob.glob(osp.join(search_dir, 'subnet_*.yaml')),
                           key=lambda p: -flops_of(p)):
        label = label_of(searched)
        uniform = osp.join(root, f'uniform_flops-{label}.yaml')
        runner.run(f'uniform_{label}', 'tools/get_uniform_cfg.py',
                   CONFIGS.format('supernet'), '--target', 'flops',
                   repr(flops_of(searched)), '-o', uniform)
        for kind, cfg in (('searched', searched), ('uniform', uniform)):
            runs = [finetune_from_supernet(
                runner, f'{kind}_{label}' + (f'_ft{k}' if k else ''), cfg,
                supernet, seed + 1000 * k) for k in args.finetune_seeds]
            result.setdefault(label, {})[kind] = dict(
                flops=flops_of(cfg), top1=statistics.mean(runs),
                runs=runs)
    return result


def _runs(network: dict) -> str:
    """'88.10' or, for several fine-tunings, '88.10 (88.0 / 88.2)'."""
    runs = network.get('runs', [network['top1']])
    return f'{network["top1"]:.2f}' + ('' if len(runs) == 1 else ' (' + \
        ' / '.join(f'{v:.2f}' for v in runs) + ')')


def _tag(args: argparse.Namespace) -> str:
    """Where a seed's result is kept: the work dir itself for one
    fine-tuning (k = 0, the form of earlier runs), else a folder naming
    the fine-tune seeds."""
    return '' if args.finetune_seeds == [0] else \
        'ft' + '-'.join(map(str, args.finetune_seeds))


def main() -> None:
    args = parse_args()
    supernets = dict(item.split('=', 1) for item in args.supernet)
    runs = {seed: seed_result(osp.join(args.work_dir, _tag(args)), seed,
                              lambda s=seed: run_seed(args, s,
                                                      supernets[str(s)]))
            for seed in args.seeds}
    print(f'grid {args.grid}, fine-tune seeds k = {args.finetune_seeds} '
          '(top-1: the mean over them)')
    print('| seed | target | searched MFLOPs | searched top-1 | '
          'uniform MFLOPs | uniform top-1 | searched - uniform |')
    print('|---|---|---|---|---|---|---|')
    diffs: dict[str, list[float]] = {}
    for seed, result in runs.items():
        for label, pair in result.items():
            s, u = pair['searched'], pair['uniform']
            diffs.setdefault(label, []).append(s['top1'] - u['top1'])
            print(f'| {seed} | {label} | {s["flops"] / 1e6:.3f} | '
                  f'{_runs(s)} | {u["flops"] / 1e6:.3f} | '
                  f'{_runs(u)} | {s["top1"] - u["top1"]:+.2f} |')
    print('\n| target | searched - uniform | seeds searched >= uniform |')
    print('|---|---|---|')
    for label, values in diffs.items():
        print(f'| {label} | {mean_std(values)} | '
              f'{sum(v >= 0 for v in values)} of {len(values)} |')


if __name__ == '__main__':
    main()
