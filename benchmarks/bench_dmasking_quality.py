"""DMaskingNAS derived network vs uniform width at equal FLOPs.

For each seed: the DMaskingNAS search of MobileNetV2 1.0x on Fashion-MNIST
(tools/search.py), the uniform-width network of the derived network's
FLOPs (tools/get_uniform_cfg.py), then both retrained from scratch with the
same recipe and seed (tools/train.py) and tested on the 10000 test images
(tools/test.py). Prints FLOPs and top-1 mean +- std. Finished pieces are
skipped, so a killed run continues.

Example (a CPU-sized recipe; the defaults):
    python benchmarks/bench_dmasking_quality.py --seeds 0 1 2 \
        --work-dir work_dirs/dmasking_quality
"""
import argparse
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

SEARCH = 'configs/dmasking/dmasking_mbv2_1.0x_search_1xb64_fashion-mnist.py'
RETRAIN = 'configs/autoslim/autoslim_mbv2_1.0x_subnet_1xb64_fashion-mnist.py'
NETWORKS = ('derived', 'uniform')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--work-dir', default='work_dirs/dmasking_quality')
    parser.add_argument('--weight-images', type=int, default=5000,
                        help='training images of the weight steps')
    parser.add_argument('--arch-images', type=int, default=5000,
                        help='training images of the architecture steps '
                        '(taken from 40000 on)')
    parser.add_argument('--search-epochs', type=int, default=8)
    parser.add_argument('--retrain-images', type=int, default=10000)
    parser.add_argument('--retrain-epochs', type=int, default=6)
    parser.add_argument('--cost-network', choices=['derived', 'expected'],
                        default='derived',
                        help="model.cost_network of the search: 'expected' "
                        "(the paper's effective shape from the Gumbel "
                        "weights) or 'derived' (the argmax network)")
    return parser.parse_args()


def search(args, seed: int, work_dir: str) -> str:
    derived = osp.join(work_dir, 'derived.yaml')
    if not osp.isfile(derived):
        epochs = args.search_epochs
        tool('tools/search.py', SEARCH, '--work-dir', work_dir, '--resume',
             '--cfg-options', f'randomness.seed={seed}',
             f'model.cost_network={args.cost_network}',
             f'train_dataloader.dataset.stop={args.weight_images}',
             'train_cfg.arch_dataloader.dataset.start=40000',
             'train_cfg.arch_dataloader.dataset.stop='
             f'{40000 + args.arch_images}',
             f'max_epochs={epochs}', f'train_cfg.max_epochs={epochs}',
             f'train_cfg.val_interval={epochs}',
             f'param_scheduler.architecture.end={epochs}')
    return derived


def retrain(args, seed: int, cfg: str, work_dir: str) -> float:
    """Test top-1 of ``cfg`` retrained with the benchmark's recipe."""
    epochs = args.retrain_epochs
    return retrain_and_test(RETRAIN, work_dir, [
        f'randomness.seed={seed}',
        f'train_dataloader.dataset.indices={args.retrain_images}',
        f'max_epochs={epochs}', f'train_cfg.max_epochs={epochs}',
        f'train_cfg.val_interval={epochs}', f'param_scheduler.end={epochs}',
        f'model.channel_cfgs={cfg}'])


def run_seed(args, seed: int) -> dict:
    root = osp.join(args.work_dir, f'seed{seed}')
    derived = search(args, seed, osp.join(root, 'search'))
    uniform = osp.join(root, 'uniform.yaml')
    if not osp.isfile(uniform):
        tool('tools/get_uniform_cfg.py', RETRAIN, '--target', 'flops',
             flops_of(derived), '-o', uniform)
    return {name: dict(flops=flops_of(cfg), top1=retrain(
        args, seed, cfg, osp.join(root, name)))
        for name, cfg in (('derived', derived), ('uniform', uniform))}


def main() -> None:
    args = parse_args()
    runs = [seed_result(args.work_dir, seed, partial(run_seed, args, seed))
            for seed in args.seeds]
    print(f'seeds {args.seeds}, cost on the {args.cost_network} network: '
          f'search {args.search_epochs} epochs on '
          f'{args.weight_images} + {args.arch_images} images; retrain '
          f'{args.retrain_epochs} epochs on {args.retrain_images} images')
    print_table(runs, NETWORKS, 'MFLOPs (mean)', flops_digits=3)
    gaps = [r['derived']['top1'] - r['uniform']['top1'] for r in runs]
    print(f'derived - uniform: {mean_std(gaps)} (per seed '
          f'{", ".join(f"{g:+.2f}" for g in gaps)})')


if __name__ == '__main__':
    main()
