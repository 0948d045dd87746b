"""Cost of an AutoSlim supernet step, and of the greedy search's bookkeeping.

1. One sandwich step (n subnets: max, min, n-2 random; in-place
   distillation) against (a) the sum of the same n subnets' steps as static
   exported networks and (b) one plain training step of the max network.
   Targets: (a) <= 1.10, (b) <= 2.5 for n=4.
2. With ``--search-history``, the per-step time of a finished greedy search
   and the share of it spent outside model evaluation (target < 2%).

Example:
    python benchmarks/bench_autoslim.py --device cpu
    python benchmarks/bench_autoslim.py --search-history \
        work_dirs/autoslim_demo/search/search_history.json
"""
import argparse
import json
import random
import statistics
import time

import torch
from classifiers import random_batches
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope

from mmchansearch.models import AutoSlim

CONFIG = 'configs/autoslim/autoslim_mbv2_1.0x_supernet_1xb64_fashion-mnist.py'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--input-size', type=int, default=32)
    parser.add_argument('--widen-factor', type=float, default=1.0)
    parser.add_argument('--num-samples', type=int, default=4)
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, help='torch intra-op threads')
    parser.add_argument('--search-history', help='search_history.json of a '
                        'finished search, to report its step costs')
    return parser.parse_args()


def build_autoslim(args) -> AutoSlim:
    from mmengine.config import Config
    cfg = Config.fromfile(CONFIG)
    architecture = cfg.model.architecture
    architecture.backbone.widen_factor = args.widen_factor
    architecture.data_preprocessor = cfg.data_preprocessor
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        return AutoSlim(
            architecture=architecture,
            mutator=dict(cfg.model.mutator, input_shape=(
                3, args.input_size, args.input_size)),
            num_samples=args.num_samples, distill=True, seed=0)


def timed(step, device: str) -> float:
    if device == 'cuda':
        torch.cuda.synchronize()
    start = time.perf_counter()
    step()
    if device == 'cuda':
        torch.cuda.synchronize()
    return time.perf_counter() - start


def optimizer_for(model) -> OptimWrapper:
    return OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01,
                                        momentum=0.9))


def bench_steps(args) -> None:
    device = args.device
    algorithm = build_autoslim(args).to(device).train()
    # the same random subnets every step, so the static twins match
    sandwich_seed = 1234
    algorithm._rng = random.Random(sandwich_seed)
    subnets = []
    for _, activate in algorithm.sandwich():
        activate()
        subnets.append(algorithm.mutator.current_choices())
    statics = []
    for choices in subnets:
        algorithm.mutator.set_choices(choices)
        static = algorithm.mutator.export_static().to(device).train()
        statics.append((static, optimizer_for(static)))
    plain = statics[0]  # the max subnet exported is the plain max network
    batch = random_batches(1, args.batch_size, args.input_size)[0]
    algorithm_optim = optimizer_for(algorithm)

    def supernet_step():
        algorithm._rng = random.Random(sandwich_seed)
        algorithm.train_step(batch, algorithm_optim)

    def static_steps():
        for model, optim in statics:
            model.train_step(batch, optim)

    def plain_step():
        plain[0].train_step(batch, plain[1])

    for _ in range(args.warmup):
        supernet_step()
        static_steps()
    times = {'supernet': [], 'static_sum': [], 'plain_max': []}
    for _ in range(args.repeats):
        times['supernet'].append(timed(supernet_step, device))
        times['static_sum'].append(timed(static_steps, device))
        times['plain_max'].append(timed(plain_step, device))
    median = {k: statistics.median(v) for k, v in times.items()}
    flops = [algorithm.mutator.estimate(c)['flops'] / 1e6 for c in subnets]
    print(f'device {device}, torch {torch.__version__}, threads '
          f'{torch.get_num_threads()}, batch {args.batch_size}, input '
          f'{args.input_size}x{args.input_size}, MobileNetV2 '
          f'{args.widen_factor}x, n={args.num_samples}; subnet MFLOPs '
          + ', '.join(f'{f:.2f}' for f in flops))
    print('| step | median ms |')
    print('|---|---|')
    for key, value in median.items():
        print(f'| {key} | {value * 1e3:.1f} |')
    print(f'supernet / sum of {len(statics)} static subnet steps: '
          f'{median["supernet"] / median["static_sum"]:.3f} (target <= 1.10)')
    print(f'supernet / one plain max step: '
          f'{median["supernet"] / median["plain_max"]:.3f} (target <= 2.5)')


def report_search(path: str) -> None:
    with open(path) as f:
        history = json.load(f)[1:]  # step 0 is the unslimmed start
    total = sum(h['seconds'] for h in history)
    evaluation = sum(h['eval_seconds'] for h in history)
    print(f'{path}: {len(history)} greedy steps, '
          f'{total / len(history):.2f} s per step, '
          f'{100 * (total - evaluation) / total:.3f}% outside model '
          'evaluation (target < 2%)')


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.search_history:
        report_search(args.search_history)
    else:
        bench_steps(args)


if __name__ == '__main__':
    main()
