"""The main job's searched vs uniform networks, each fine-tuned with several
seeds: how much of a gap is the networks' and how much one run's noise.

RESULTS section 6c compares each searched subnet with the uniform network
of its FLOPs after one fine-tuning each; one fine-tuning moves a network's
top-1 by 0.3-0.4 points (thread count alone, section 6c), about the size
of the gaps at 0.4M-0.6M FLOPs. Here the same networks (each seed's
searched ``subnet_flops-*.yaml`` and ``uniform_flops-*.yaml``, the main
job's quarter grid) are fine-tuned from the same supernet with the main
job's recipe (the ``subnet-from-supernet`` config) under several training
seeds (data order and augmentation), and every network's top-1 is the mean
over them. Nothing is searched again.

Resumable: every run is a recorded stage of the work dir (a killed run
started again skips the finished ones).

Example (section 6c's seeds, one thread per run):
    OMP_NUM_THREADS=1 python benchmarks/bench_autoslim_finetune_seeds.py \
        --work-dir work_dirs/autoslim_ft_seeds \
        --run 0=work_dirs/autoslim_quality_t1/seed0 \
        --run 1=work_dirs/autoslim_quality/seed1 \
        --run 2=work_dirs/autoslim_quality/seed2
"""
import argparse
import glob
import os.path as osp
import statistics

from quality_runs import finetune_from_supernet, flops_of, mean_std

from mmchansearch.tool_runs import ToolRunner


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--run', action='append', required=True,
                        metavar='SEED=DEMO_WORK_DIR',
                        help='a main-job work dir of that seed (its '
                        'supernet/epoch_3.pth, search/ and uniform/)')
    parser.add_argument('--finetune-seeds', type=int, nargs='+',
                        default=[1, 2, 0],
                        help='k: fine-tune with randomness.seed = '
                        'SEED + 1000 k (k = 0 is the main job\'s own run)')
    parser.add_argument('--targets', nargs='+', default=None,
                        help='only these targets (e.g. 400K 600K)')
    parser.add_argument('--work-dir', default='work_dirs/autoslim_ft_seeds')
    return parser.parse_args()


def networks(demo_dir: str) -> dict[str, dict[str, str]]:
    """target label -> {'searched': yaml, 'uniform': yaml}."""
    found = {}
    for searched in glob.glob(osp.join(demo_dir, 'search',
                                       'subnet_flops-*.yaml')):
        label = osp.splitext(searched)[0].split('-')[-1]
        uniform = osp.join(demo_dir, 'uniform', f'uniform_flops-{label}.yaml')
        found[label] = dict(searched=searched, uniform=uniform)
    return dict(sorted(found.items(), key=lambda kv: -flops_of(
        kv[1]['searched'])))


def main() -> None:
    args = parse_args()
    runs = dict(item.split('=', 1) for item in args.run)
    # top1[seed][label][kind] = [top-1 per fine-tune seed]
    top1: dict = {}
    flops: dict = {}
    for k in args.finetune_seeds:
        for seed, demo_dir in runs.items():
            supernet = osp.join(demo_dir, 'supernet', 'epoch_3.pth')
            runner = ToolRunner(osp.join(args.work_dir, f'seed{seed}'))
            for label, pair in networks(demo_dir).items():
                if args.targets and label not in args.targets:
                    continue
                for kind, cfg in pair.items():
                    value = finetune_from_supernet(
                        runner, f'{kind}_{label}_ft{k}', cfg, supernet,
                        int(seed) + 1000 * k)
                    top1.setdefault(seed, {}).setdefault(
                        label, {}).setdefault(kind, []).append(value)
                    flops[(seed, label, kind)] = flops_of(cfg)
    print(f'fine-tune seeds k = {args.finetune_seeds} '
          '(randomness.seed = SEED + 1000 k)\n')
    print('| seed | target | searched MFLOPs | searched top-1 per k | '
          'uniform MFLOPs | uniform top-1 per k | searched - uniform '
          '(mean over k) |')
    print('|---|---|---|---|---|---|---|')
    per_target: dict[str, list[float]] = {}
    for seed, result in top1.items():
        for label, pair in result.items():
            s, u = pair['searched'], pair['uniform']
            diff = statistics.mean(s) - statistics.mean(u)
            per_target.setdefault(label, []).append(diff)
            print(f'| {seed} | {label} | '
                  f'{flops[(seed, label, "searched")] / 1e6:.3f} | '
                  f'{" / ".join(f"{v:.2f}" for v in s)} | '
                  f'{flops[(seed, label, "uniform")] / 1e6:.3f} | '
                  f'{" / ".join(f"{v:.2f}" for v in u)} | {diff:+.2f} |')
    print('\n| target | searched - uniform (each network: mean over k), '
          'mean +- std over seeds | seeds searched >= uniform |')
    print('|---|---|---|')
    for label, values in per_target.items():
        print(f'| {label} | {mean_std(values)} | '
              f'{sum(v >= 0 for v in values)} of {len(values)} |')


if __name__ == '__main__':
    main()
