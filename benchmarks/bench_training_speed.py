"""CPU training speed: the old path vs the new default, in one run.

Old path: contiguous (NCHW) weights, oneDNN's default primitive cache (1024
primitives). New path (the toolbox's default now): channels-last weights
(:mod:`mmchansearch.memory_format`) and a 16384-primitive cache. The cache
size is read once per process, so each path runs in its own worker
process; workers of the two paths alternate, round after round, and the
ratio is the median over rounds of (old seconds / new seconds).

Timed, for the demo's MobileNetV2 supernet at 32x32:

- plain: a training step of the max network exported as a plain model;
- sandwich: an AutoSlim supernet step (max, min, 2 random widths, in-place
  distillation), random widths drawn anew every step from a seeded cycle of
  ``--cycle`` sandwiches (warm-up runs the cycle once, as a long training
  meets the same widths again);
- greedy eval: the greedy search scoring random subnets on a held-out
  batch with batch-statistics BN.

Target: >= 1.6x on the sandwich step.

Example:
    python benchmarks/bench_training_speed.py
    python benchmarks/bench_training_speed.py --batch-size 128 --rounds 5
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

PATHS = {
    'old': dict(memory_format='contiguous', cache='1024'),
    'new': dict(memory_format='channels_last', cache='16384'),
}
STEPS = ('plain', 'sandwich', 'greedy_eval')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--eval-batch-size', type=int, default=500)
    parser.add_argument('--input-size', type=int, default=32)
    parser.add_argument('--widen-factor', type=float, default=0.5)
    parser.add_argument('--num-samples', type=int, default=4)
    parser.add_argument('--cycle', type=int, default=8,
                        help='distinct random sandwiches / subnets')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--threads', type=int, help='torch intra-op threads')
    parser.add_argument('--worker', choices=sorted(PATHS),
                        help=argparse.SUPPRESS)
    return parser.parse_args()


def worker(args) -> dict:
    """Times the three steps in this process's path; seconds per step."""
    import torch
    from bench_autoslim import build_autoslim, optimizer_for
    from classifiers import random_batches

    from mmchansearch.engine.autoslim_search import score_batches
    from mmchansearch.engine.batch_norm import batch_statistics
    from mmchansearch.memory_format import to_memory_format
    if args.threads:
        torch.set_num_threads(args.threads)
    memory_format = PATHS[args.worker]['memory_format']
    torch.manual_seed(0)
    algorithm = to_memory_format(build_autoslim(args), memory_format)
    optim = optimizer_for(algorithm)
    algorithm.mutator.set_max()
    plain = to_memory_format(algorithm.mutator.export_static(),
                             memory_format).train()
    plain_optim = optimizer_for(plain)
    batch = random_batches(1, args.batch_size, args.input_size)[0]
    held_out = random_batches(1, args.eval_batch_size, args.input_size)
    subnets = [algorithm.mutator.sample(random.Random(i))
               for i in range(args.cycle)]

    def plain_step(_):
        plain.train_step(batch, plain_optim)

    def sandwich(i):
        algorithm._rng = random.Random(i)
        algorithm.train()
        algorithm.train_step(batch, optim)

    def greedy_eval(i):
        algorithm.eval()
        algorithm.mutator.set_choices(subnets[i])
        with batch_statistics(algorithm):
            score_batches(algorithm, held_out)

    seconds = {}
    for name, step in zip(STEPS, (plain_step, sandwich, greedy_eval)):
        for i in range(args.cycle):  # warm-up: every shape once
            step(i)
        start = time.perf_counter()
        for i in range(args.cycle):
            step(i)
        seconds[name] = (time.perf_counter() - start) / args.cycle
    return seconds


def main() -> None:
    args = parse_args()
    if args.worker:
        os.environ['ONEDNN_PRIMITIVE_CACHE_CAPACITY'] = \
            PATHS[args.worker]['cache']
        print(json.dumps(worker(args)))
        return
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (here, os.environ.get('PYTHONPATH')) if p))
    env.pop('ONEDNN_PRIMITIVE_CACHE_CAPACITY', None)
    rounds = []
    for r in range(args.rounds):
        result = {}
        for path in PATHS:
            out = subprocess.run(
                [sys.executable, os.path.abspath(__file__), '--worker', path,
                 *sys.argv[1:]], env=env, check=True, capture_output=True,
                text=True).stdout
            result[path] = json.loads(out.strip().splitlines()[-1])
        rounds.append(result)
        print(f'round {r + 1}/{args.rounds}: ' + ', '.join(
            f'{s} {result["old"][s] / result["new"][s]:.2f}x'
            for s in STEPS), flush=True)
    images = dict(plain=args.batch_size, sandwich=args.batch_size,
                  greedy_eval=args.eval_batch_size)
    print(f'\nMobileNetV2 {args.widen_factor}x at {args.input_size}x'
          f'{args.input_size}, train batch {args.batch_size}, held-out batch '
          f'{args.eval_batch_size}, n={args.num_samples}, {args.rounds} '
          f'rounds x {args.cycle} steps per path, threads '
          f'{args.threads or "default"}')
    print('| step | old img/s (contiguous, cache 1024) | new img/s '
          '(channels_last, cache 16384) | new / old |')
    print('|---|---|---|---|')
    for step in STEPS:
        old = statistics.median(r['old'][step] for r in rounds)
        new = statistics.median(r['new'][step] for r in rounds)
        ratio = statistics.median(r['old'][step] / r['new'][step]
                                  for r in rounds)
        print(f'| {step} | {images[step] / old:.0f} | '
              f'{images[step] / new:.0f} | {ratio:.2f}x |')


if __name__ == '__main__':
    main()
