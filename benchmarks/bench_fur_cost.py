"""Cost of one FUR measurement, with and without prefix replay.

Network Adjustment measures every group's FLOPs Utilization Ratio with
``repeats`` dropout passes per held-out batch. Modules that run before a
group's first reader do not change under its dropout; replaying their
outputs (cached in the undisturbed pass) skips them. Prints, per model, the
cost in validation passes (FLOPs computed / FLOPs of one pass) and the
measured wall time, naive vs replay, from one run.

Example:
    python benchmarks/bench_fur_cost.py --threads 1
"""
import argparse
import time

import torch
from classifiers import build_classifier_supernet, random_batches

from mmchansearch.engine.flops_utilization import (
    ChannelDropout,
    UtilizationMeter,
    dropout_rates,
    group_flops,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--models', nargs='+',
                        default=['ResNet-18', 'MobileNetV2-1.0x'])
    parser.add_argument('--input-size', type=int, default=224)
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--batches', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--threads', type=int, default=1)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    data = random_batches(args.batches, args.batch_size, args.input_size,
                          num_classes=1000)
    print(f'{args.batches} batches of {args.batch_size} at '
          f'{args.input_size}x{args.input_size}, {args.repeats} repeats, '
          f'{args.threads} thread(s)')
    print('| model | groups | naive passes | replay passes | pass ratio | '
          'naive s | replay s | time ratio | same damage |')
    print('|---|---|---|---|---|---|---|---|---|')
    for name in args.models:
        model = build_classifier_supernet(name, args.input_size).eval()
        mutator = model.mutator
        dropout = ChannelDropout(repeats=args.repeats)
        _, share = group_flops(mutator, mutator.current_choices())
        rates = dropout_rates(dropout, share)
        results, seconds = [], []
        for reuse in (False, True):
            meter = UtilizationMeter(model, mutator, dropout,
                                     reuse_prefix=reuse)
            tick = time.perf_counter()
            results.append(meter.measure(data, mutator.searchable_groups,
                                         rates))
            seconds.append(time.perf_counter() - tick)
        naive, replay = results
        same = all(abs(naive.damage[g] - replay.damage[g]) < 1e-5
                   for g in naive.damage)
        print(f'| {name} | {len(naive.damage)} | {naive.passes:.1f} | '
              f'{replay.passes:.1f} | {replay.passes / naive.passes:.3f} | '
              f'{seconds[0]:.1f} | {seconds[1]:.1f} | '
              f'{seconds[1] / seconds[0]:.3f} | {same} |')


if __name__ == '__main__':
    main()
