"""Cost of DMaskingNAS steps against a plain step of the max-width network.

A weight step (cross-entropy through sampled masks, SGD on the weights) and
an architecture step (search loss, Adam on the alphas) each run the shared
max-width network once with masks at the readers of every group; the plain
step trains the unmasked max-width classifier. Steps are interleaved and
the medians compared in one run. Target: a search step costs <= 1.3x a
plain step of the max-width model (per batch).

With ``--resolutions`` the input resolution is searched too (every
spatial layer runs once per candidate on its sub-sampled map).
``--cost-network`` chooses the widths the cost is computed on (default:
the config's, else the algorithm's).

Example:
    python benchmarks/bench_dmasking_step.py --threads 1
    python benchmarks/bench_dmasking_step.py --threads 1 --resolutions 24 28 32
    python benchmarks/bench_dmasking_step.py --threads 1 --cost-network sampled
"""
import argparse
import statistics
import time

import torch
from classifiers import random_batches
from mmengine.config import Config
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.registry import DefaultScope

from mmchansearch.memory_format import to_memory_format
from mmchansearch.models import DMaskingNAS
from mmchansearch.models.algorithms.dmasking import COST_NETWORKS
from mmchansearch.registry import MODELS

CONFIG = 'configs/dmasking/dmasking_mbv2_1.0x_search_1xb64_fashion-mnist.py'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--input-size', type=int, default=32)
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--resolutions', type=int, nargs='+',
                        help='candidate input sizes (resolution search)')
    parser.add_argument('--cost-network', choices=COST_NETWORKS,
                        help="DMaskingNAS's cost_network (default: the "
                        "config's, else the algorithm's)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    cfg = Config.fromfile(CONFIG)
    architecture = dict(cfg.model.architecture,
                        data_preprocessor=cfg.data_preprocessor)
    cost_network = args.cost_network or cfg.model.get('cost_network')
    options = {} if cost_network is None else dict(
        cost_network=cost_network)
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        torch.manual_seed(0)
        plain = MODELS.build(architecture).train()
        search = DMaskingNAS(
            architecture, dict(cfg.model.mutator, input_shape=(
                3, args.input_size, args.input_size)),
            target=cfg.model.target, resolutions=args.resolutions,
            **options).train()
    # the plain step runs in the search's memory format (channels-last by
    # default: about 2x faster on CPUs), so the ratio is the masks' cost
    to_memory_format(plain, search.memory_format)
    plain_opt = OptimWrapper(torch.optim.SGD(plain.parameters(), lr=0.01,
                                             momentum=0.9))
    optimizers = OptimWrapperDict(
        architecture=OptimWrapper(torch.optim.SGD(
            search.architecture.parameters(), lr=0.01, momentum=0.9)),
        arch_params=OptimWrapper(torch.optim.Adam(
            search.arch_params.parameters(), lr=0.01)))
    batch = random_batches(1, args.batch_size, args.input_size)[0]
    steps = dict(plain=lambda: plain.train_step(batch, plain_opt),
                 weights=lambda: search.train_step(batch, optimizers),
                 arch=lambda: search.arch_step(batch, optimizers))
    times = {name: [] for name in steps}
    for i in range(args.repeats + 2):
        for name, step in steps.items():
            tick = time.perf_counter()
            step()
            if i >= 2:  # warm-up
                times[name].append(time.perf_counter() - tick)
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f'MobileNetV2 1.0x, batch {args.batch_size} at {args.input_size}x'
          f'{args.input_size}, {args.threads} thread(s), {args.repeats} '
          f'steps each, medians, resolutions {args.resolutions or "-"}, '
          f'cost_network {search.cost_network!r}, {search.memory_format}')
    print('| step | seconds | / plain step |')
    print('|---|---|---|')
    for name in steps:
        print(f'| {name} | {median[name]:.4f} | '
              f'{median[name] / median["plain"]:.3f} |')
    both = (median['weights'] + median['arch']) / 2
    print(f'| weights + arch, per batch | {both:.4f} | '
          f'{both / median["plain"]:.3f} |')


if __name__ == '__main__':
    main()
