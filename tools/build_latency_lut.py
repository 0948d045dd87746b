"""Measures a latency lookup table of a search space on this device.

Every distinct op the config's search space can instantiate is run at its
real input shape (warm-up runs, then the median of timed runs): the
candidate blocks of every layer of a block-choice space (FBNet DNAS), or
every analyzed conv/linear layer at each pair of candidate widths of its
channel groups (AutoSlim, DMaskingNAS, ...; the mutator's width_ratios bound
the widths). Then a few random networks of the space are timed end to end
and the table is scaled by the median ratio of their measured latency to
the sum of their ops' entries (ops timed alone find their weights in the
caches, inside a network they do not). Searches use the table through
``latency_table=``.

Examples:
    python tools/build_latency_lut.py configs/dnas/CONFIG --device cpu \
        -o work_dirs/lut/fbnet_cpu.json
    python tools/build_latency_lut.py configs/dmasking/CONFIG --device cuda \
        --batch-size 32 -o lut_cuda.json
"""
import argparse
import os
import random
import time

import torch

import mmchansearch.models  # noqa: F401  (registers algorithms)
from mmchansearch.cli import DictAction, load_config, run_tool
from mmchansearch.errors import LatencyTableError
from mmchansearch.latency_table import LatencyTable, build_table, calibrate
from mmchansearch.supernet import build_search_space


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='search config (DNAS, or any model '
                        'with a channel mutator)')
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu',
                        help='device to measure on (the one the searched '
                        'model will run on)')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='samples per measured forward')
    parser.add_argument('--threads', type=int,
                        help='torch CPU threads (default: torch\'s)')
    parser.add_argument('--warmup', type=int, default=5,
                        help='untimed runs per op')
    parser.add_argument('--repeats', type=int, default=20,
                        help='timed runs per op (their median is kept)')
    parser.add_argument('--calibrate', type=int, default=10,
                        help='random networks of the space timed end to end '
                        'to fit the table\'s scale (0: none)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the calibration networks')
    parser.add_argument('--update', action='store_true',
                        help='keep the entries of an existing --out table '
                        'and measure only the missing ops')
    parser.add_argument('-o', '--out', required=True,
                        help='the table to write (.json)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, xxx=yyy')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.cfg_options)
    model = build_search_space(cfg).eval()
    ops = model.latency_ops()
    if os.path.exists(args.out) and not args.update:
        raise LatencyTableError(
            f'{args.out} exists (a measured table); --update keeps its '
            'entries and measures only missing ops, or write to another '
            '-o (delete the file to measure everything again).')
    existing = LatencyTable.load(args.out, args.device) if args.update \
        else None
    distinct = len({op.signature for op in ops})
    print(f'{len(ops)} ops, {distinct} distinct, on {args.device} '
          f'(batch {args.batch_size}, {torch.get_num_threads()} threads)')
    start = time.perf_counter()
    table = build_table(ops, args.device, args.batch_size, args.warmup,
                        args.repeats, existing)
    if args.calibrate:
        rng = random.Random(args.seed)
        calibrate(table, [model.sample_network(rng)
                          for _ in range(args.calibrate)],
                  model.input_shape, args.device, args.batch_size,
                  args.warmup, args.repeats)
        print(f'\ncalibration on {args.calibrate} networks: scale '
              f'{table.scale:.3f} (ratios measured / sum of ops '
              f'{table.meta["calibration_ratios"]})')
    table.meta.update(config=args.config,
                      build_seconds=round(time.perf_counter() - start, 1))
    table.save(args.out)
    print(f'\nwrote {args.out}: {len(table.entries)} ops measured in '
          f'{table.meta["build_seconds"]} s')


if __name__ == '__main__':
    run_tool(main)
