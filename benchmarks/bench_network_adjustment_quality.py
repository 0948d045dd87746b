"""Network Adjustment vs the original and uniformly scaled networks.

For each seed: the adjustment search (tools/search.py), then the original
network, the adjusted one, the uniform x0.8 network and the searched x0.8
variant are retrained from scratch with the same recipe and seed
(tools/train.py) and tested (tools/test.py). Prints top-1 mean +- std.

``--protocol paper`` (the search config's default) trains every round
from scratch with channel dropout and adjusts the uniform x0.8 network
itself for "searched x0.8"; ``--protocol finetune`` is the toolbox's first
protocol with the settings of RESULTS sections 8 and 8b (adjusting rate
0.2, FUR dropout rate 0.1). ``--divisor`` sets the mutator's width
granularity for the search and the retraining (the config's is 1, whole
channels; RESULTS sections 8-8c ran with 8).

Example (a CPU-sized recipe; the defaults):
    python benchmarks/bench_network_adjustment_quality.py --seeds 0 1 2 \
        --work-dir work_dirs/na_quality_paper --protocol paper
"""
import argparse
import os
import os.path as osp
from functools import partial

from quality_runs import (
    flops_of,
    mean_std,
    print_table,
    retrain_and_test,
    seed_result,
    tool,
)

from mmchansearch.visualization import plot_paired_gaps

CONFIGS = 'configs/network_adjustment/'
SEARCH = CONFIGS + 'na_resnet18-cifar-0.25x_search_1xb64_fashion-mnist.py'
RETRAIN = CONFIGS + 'na_resnet18-cifar-0.25x_retrain_1xb64_fashion-mnist.py'
NETWORKS = ('original', 'final', 'uniform_x0.8', 'final_x0.8')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--work-dir', default='work_dirs/na_quality')
    parser.add_argument('--train-images', type=int, default=10000)
    parser.add_argument('--rounds', type=int, default=4)
    parser.add_argument('--round-epochs', type=int, default=1)
    parser.add_argument('--retrain-epochs', type=int, default=4)
    parser.add_argument(
        '--retrain-images', type=int, default=None,
        help='training images of the retraining; default: --train-images')
    parser.add_argument(
        '--search-from', default=None, metavar='WORK_DIR',
        help="another run's work dir whose searches (seed<N>/search) the "
        'networks are taken from instead of searching here: retrain the '
        'same networks with another recipe')
    parser.add_argument('--protocol', choices=('paper', 'finetune'),
                        default='paper')
    parser.add_argument(
        '--divisor', type=int, default=None,
        help="the mutator's width granularity (model.mutator.divisor) for "
        'the search and the retraining; default: the config\'s')
    parser.add_argument(
        '--networks', nargs='+', choices=NETWORKS, default=list(NETWORKS),
        help='the networks retrained; without the x0.8 ones the search '
        'writes no x0.8 variants (search_loop.scales=[])')
    args = parser.parse_args()
    if args.retrain_images is None:
        args.retrain_images = args.train_images
    return args


# the search settings each protocol was benchmarked with
PROTOCOL_OPTIONS = {
    'paper': ['search_loop.protocol=paper'],
    'finetune': ['search_loop.protocol=finetune', 'search_loop.step=0.2',
                 'search_loop.dropout.rate=0.1'],
}


def common(args, seed: int, epochs: int, images: int) -> list[str]:
    return [f'randomness.seed={seed}',
            f'train_dataloader.dataset.stop={images}',
            f'max_epochs={epochs}', f'train_cfg.max_epochs={epochs}',
            f'train_cfg.val_interval={epochs}',
            f'param_scheduler.end={epochs}'] + (
                [] if args.divisor is None
                else [f'model.mutator.divisor={args.divisor}'])


def scaled(args) -> bool:
    """Whether an x0.8 network is retrained."""
    return any('x0.8' in name for name in args.networks)


def run_seed(args, seed: int) -> dict:
    search_dir = osp.join(args.search_from or args.work_dir, f'seed{seed}',
                          'search')
    missing = [name for name in args.networks
               if not osp.isfile(osp.join(search_dir, f'{name}.yaml'))]
    if missing and args.search_from:
        raise SystemExit(f'error: {search_dir} has no {missing[0]}.yaml; '
                         'run the search there first (same command without '
                         '--search-from) or drop --search-from')
    # a search finished without the x0.8 networks resumes to add them
    if missing:
        tool('tools/search.py', SEARCH, '--work-dir', search_dir, '--resume',
             '--cfg-options',
             *common(args, seed, args.round_epochs, args.train_images),
             f'search_loop.rounds={args.rounds}', f'search_loop.seed={seed}',
             *PROTOCOL_OPTIONS[args.protocol],
             *([] if scaled(args) else ['search_loop.scales=[]']))
    result = {}
    for name in args.networks:
        cfg = osp.join(search_dir, f'{name}.yaml')
        train_dir = osp.join(args.work_dir, f'seed{seed}', name)
        options = common(args, seed, args.retrain_epochs,
                         args.retrain_images) + [
            f'model.channel_cfgs={cfg}']
        result[name] = dict(top1=retrain_and_test(RETRAIN, train_dir,
                                                  options),
                            flops=flops_of(cfg))
    return result


def main() -> None:
    args = parse_args()
    networks = args.networks
    results = args.work_dir if networks == list(NETWORKS) else osp.join(
        args.work_dir, 'results_' + '_'.join(networks))
    os.makedirs(results, exist_ok=True)
    runs = [seed_result(results, seed, partial(run_seed, args, seed))
            for seed in args.seeds]
    print(f'seeds {args.seeds}, protocol {args.protocol}'
          + ('' if args.divisor is None else f', divisor {args.divisor}')
          + f': {args.rounds} '
          f'rounds x {args.round_epochs} epoch(s), retrain '
          f'{args.retrain_epochs} epochs on {args.retrain_images} images'
          + (f' (searches of {args.search_from})' if args.search_from
             else ''))
    print_table(runs, networks)
    print('per seed (top-1): ' + '; '.join(
        f'seed {seed}: ' + ', '.join(f'{n} {r[n]["top1"]:.2f}'
                                     for n in networks)
        for seed, r in zip(args.seeds, runs)))
    gaps = {}
    for better, worse in (('final', 'original'),
                          ('final_x0.8', 'uniform_x0.8')):
        if not {better, worse} <= set(networks):
            continue
        label = f'{better} - {worse}'
        gaps[label] = [r[better]['top1'] - r[worse]['top1'] for r in runs]
        print(f'{label}: {mean_std(gaps[label])}')
    if gaps:
        plot = osp.join(results, 'gaps.png')
        plot_paired_gaps(
            gaps, plot, f'Network Adjustment ({args.protocol}), seeds '
            f'{args.seeds}\nretrained {args.retrain_epochs} epochs on '
            f'{args.retrain_images} images')
        print(f'plot: {plot}')


if __name__ == '__main__':
    main()
