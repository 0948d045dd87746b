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
import json
import os.path as osp
import statistics
import subprocess
import sys

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
    return parser.parse_args()


def tool(*args) -> None:
    subprocess.run([sys.executable, *map(str, args)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def search(args, seed: int, work_dir: str) -> str:
    derived = osp.join(work_dir, 'derived.yaml')
    if not osp.isfile(derived):
        epochs = args.search_epochs
        tool('tools/search.py', SEARCH, '--work-dir', work_dir, '--resume',
             '--cfg-options', f'randomness.seed={seed}',
             f'train_dataloader.dataset.stop={args.weight_images}',
             'train_cfg.arch_dataloader.dataset.start=40000',
             'train_cfg.arch_dataloader.dataset.stop='
             f'{40000 + args.arch_images}',
             f'max_epochs={epochs}', f'train_cfg.max_epochs={epochs}',
             f'train_cfg.val_interval={epochs}',
             f'param_scheduler.architecture.end={epochs}')
    return derived


def flops_of(channel_cfg: str) -> float:
    with open(channel_cfg) as f:
        return float(next(line.split(':')[1] for line in f
                          if line.strip().startswith('flops:')))


def retrain_and_test(args, seed: int, cfg: str, work_dir: str) -> float:
    metrics = osp.join(work_dir, 'test.json')
    if not osp.isfile(metrics):
        epochs = args.retrain_epochs
        options = [f'randomness.seed={seed}',
                   f'train_dataloader.dataset.indices={args.retrain_images}',
                   f'max_epochs={epochs}', f'train_cfg.max_epochs={epochs}',
                   f'train_cfg.val_interval={epochs}',
                   f'param_scheduler.end={epochs}',
                   f'model.channel_cfgs={cfg}']
        tool('tools/train.py', RETRAIN, '--work-dir', work_dir, '--resume',
             '--cfg-options', *options)
        with open(osp.join(work_dir, 'last_checkpoint')) as f:
            checkpoint = f.read().strip()
        tool('tools/test.py', RETRAIN, checkpoint, '--out', metrics,
             '--work-dir', work_dir, '--cfg-options', *options)
    with open(metrics) as f:
        return json.load(f)['accuracy/top1']


def run_seed(args, seed: int) -> dict:
    out = osp.join(args.work_dir, f'seed{seed}.json')
    if osp.isfile(out):
        with open(out) as f:
            return json.load(f)
    root = osp.join(args.work_dir, f'seed{seed}')
    derived = search(args, seed, osp.join(root, 'search'))
    uniform = osp.join(root, 'uniform.yaml')
    if not osp.isfile(uniform):
        tool('tools/get_uniform_cfg.py', RETRAIN, '--target', 'flops',
             flops_of(derived), '-o', uniform)
    result = {name: dict(flops=flops_of(cfg), top1=retrain_and_test(
        args, seed, cfg, osp.join(root, name)))
        for name, cfg in (('derived', derived), ('uniform', uniform))}
    with open(out, 'w') as f:
        json.dump(result, f)
    return result


def mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f'{statistics.mean(values):.2f} +- {std:.2f}'


def main() -> None:
    args = parse_args()
    runs = [run_seed(args, seed) for seed in args.seeds]
    print(f'seeds {args.seeds}: search {args.search_epochs} epochs on '
          f'{args.weight_images} + {args.arch_images} images; retrain '
          f'{args.retrain_epochs} epochs on {args.retrain_images} images')
    print('| network | MFLOPs (mean) | top-1 (test) |')
    print('|---|---|---|')
    for name in NETWORKS:
        flops = statistics.mean(r[name]['flops'] for r in runs)
        print(f'| {name} | {flops / 1e6:.3f} | '
              f'{mean_std([r[name]["top1"] for r in runs])} |')
    gaps = [r['derived']['top1'] - r['uniform']['top1'] for r in runs]
    print(f'derived - uniform: {mean_std(gaps)} (per seed '
          f'{", ".join(f"{g:+.2f}" for g in gaps)})')


if __name__ == '__main__':
    main()
