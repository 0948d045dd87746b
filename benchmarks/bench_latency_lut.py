"""Latency lookup table: build time and fidelity on this device.

Measures the table of a config's search space (every distinct op, timed),
calibrates its scale on a few random networks (as tools/build_latency_lut.py
does), then for other random architectures of the space compares the
table's prediction (the sum of the architecture's op entries, scaled) with
the measured end-to-end latency of its static network on the same device:
Pearson r and mean absolute error in percent (targets: r >= 0.95, MAE <=
10%). The uncalibrated figures are printed too. The table and the networks
are timed in alternating rounds (medians over rounds), so that slow speed
drifts of a shared machine affect both alike. A DNAS config samples block
choices; any other (channel-search) config samples candidate widths.

Example (FBNet's ImageNet space, 224x224, batch 1, one CPU thread):
    python benchmarks/bench_latency_lut.py \
        configs/dnas/dnas_fbnet_search_8xb32_in1k.py --device cpu \
        --threads 1 --archs 20 -o work_dirs/lut/fbnet_in1k_cpu.json
"""
import argparse
import random
import statistics
import time

import numpy as np
import torch

from mmchansearch.analysis import LogitsModule
from mmchansearch.cli import load_config
from mmchansearch.estimators import traced_macs
from mmchansearch.latency_table import (
    LatencyTable,
    build_table,
    calibrate,
    measure_latency,
)
from mmchansearch.supernet import build_search_space


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='a search config')
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--archs', type=int, default=20,
                        help='networks the fidelity is measured on')
    parser.add_argument('--calibrate', type=int, default=5,
                        help='other networks the scale is fitted on')
    parser.add_argument('--repeats', type=int, default=10,
                        help='timed runs per op or network and round')
    parser.add_argument('--rounds', type=int, default=5,
                        help='alternating rounds of table and network '
                        'timings')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('-o', '--out', required=True,
                        help='where the measured table goes')
    return parser.parse_args()


def fidelity(predicted: np.ndarray, measured: np.ndarray) -> str:
    errors = np.abs(predicted - measured) / measured * 100
    r = float(np.corrcoef(predicted, measured)[0, 1])
    return (f'Pearson r = {r:.3f}, mean absolute error = '
            f'{errors.mean():.1f}% (max {errors.max():.1f}%)')


def network_flops(static: torch.nn.Module, shape: tuple) -> int:
    """Traced conv + linear MACs of one sample through ``static``."""
    return sum(traced_macs(static, lambda: static(
        torch.zeros(1, *shape), mode='tensor')).values())


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    model = build_search_space(load_config(args.config)).eval()
    shape = model.input_shape
    ops = model.latency_ops()
    start = time.perf_counter()
    table = build_table(ops, args.device, args.batch_size, 5, args.repeats)
    build_seconds = time.perf_counter() - start
    rng = random.Random(args.seed)
    archs = [model.sample_network(rng) for _ in range(args.archs)]
    # one generator for all of them, so the calibration networks differ
    calibration_rng = random.Random(args.seed + 1000)
    calibration = [model.sample_network(calibration_rng)
                   for _ in range(args.calibrate)]
    tables, timings = [table], [[] for _ in archs]
    for round_index in range(args.rounds):
        if round_index:
            tables.append(build_table(ops, args.device, args.batch_size, 5,
                                      args.repeats))
        for times, (static, _) in zip(timings, archs):
            times.append(measure_latency(LogitsModule(static), shape,
                                         args.device, args.batch_size, 5,
                                         args.repeats))
    raw = LatencyTable({key: statistics.median(t.entries[key]
                                               for t in tables)
                        for key in table.entries}, dict(table.meta))
    measured = np.array([statistics.median(t) for t in timings])
    uncalibrated = np.array([predict(raw) for _, predict in archs])
    calibrate(raw, calibration, shape, args.device, args.batch_size, 5,
              args.repeats * args.rounds)
    raw.save(args.out)
    predicted = np.array([predict(raw) for _, predict in archs])
    flops = [network_flops(static, shape) for static, _ in archs]
    calibration_flops = [network_flops(static, shape)
                         for static, _ in calibration]
    print(f'\n{args.config}: {len(ops)} ops, {len(raw.entries)} distinct, '
          f'table built in {build_seconds:.1f} s on {args.device} '
          f'({raw.meta["device_name"]}, {args.threads} thread(s), batch '
          f'{args.batch_size}, torch {torch.__version__}); scale '
          f'{raw.scale:.3f} from {args.calibrate} other networks')
    print('calibration networks: MFLOPs '
          f'{[round(f / 1e6, 1) for f in calibration_flops]}, measured / '
          f'sum of ops {raw.meta["calibration_ratios"]}')
    print('| arch | MFLOPs | LUT ms (calibrated) | measured ms | error % |')
    print('|---|---|---|---|---|')
    for i, (f, p, m) in enumerate(zip(flops, predicted, measured)):
        print(f'| {i} | {f / 1e6:.1f} | {p:.2f} | {m:.2f} | '
              f'{abs(p - m) / m * 100:.1f} |')
    print(f'calibrated: {fidelity(predicted, measured)}')
    print(f'uncalibrated: {fidelity(uncalibrated, measured)}; sum of ops / '
          f'measured = {uncalibrated.sum() / measured.sum():.3f}')
    r_flops = float(np.corrcoef(flops, measured)[0, 1])
    print(f'FLOPs vs measured: Pearson r = {r_flops:.3f}')


if __name__ == '__main__':
    main()
