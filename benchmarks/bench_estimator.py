"""Analytic FLOPs/params estimator vs fvcore on exported subnets.

For seeded random channel configs of each model, times
``mutator.estimate(choices)`` against fvcore's conv + linear count of the
exported static model, and checks that every pair of counts is exactly equal
(exit status 1 otherwise).

Example:
    python benchmarks/bench_estimator.py --num-configs 20
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
import warnings
from dataclasses import dataclass, field

import torch
from classifiers import build_classifier_supernet, models_parser
from fvcore.nn import FlopCountAnalysis

from mmchansearch.analysis import LogitsModule
from mmchansearch.models.algorithms import ChannelSupernet

# fvcore's per-operator keys for conv and linear layers; the estimator's
# FLOPs are the multiply-accumulates of exactly these.
FVCORE_MAC_OPERATORS = ('conv', 'linear', 'addmm', 'matmul')
DEFAULT_MODELS = ('MobileNetV2-1.0x', 'ResNet-50')


@dataclass
class ModelResult:
    """Timings and checks of one model over all its configs.

    Attributes:
        model: the classifier's name.
        configs: how many random channel configs were timed.
        analytic_s: seconds per analytic estimate.
        fvcore_s: seconds per fvcore count (static model given).
        export_fvcore_s: seconds per export + fvcore count.
        mismatches: one line per count that differed.
    """
    model: str
    configs: int
    analytic_s: float
    fvcore_s: float
    export_fvcore_s: float
    mismatches: list[str] = field(default_factory=list)

    def row(self) -> str:
        """One row of the results table."""
        flops_ok = not any(m.startswith('flops') for m in self.mismatches)
        params_ok = not any(m.startswith('params') for m in self.mismatches)
        return (f'| {self.model} | {self.configs} '
                f'| {self.analytic_s * 1e6:.1f} '
                f'| {self.fvcore_s * 1e3:.1f} '
                f'| {self.export_fvcore_s * 1e3:.1f} '
                f'| {self.fvcore_s / self.analytic_s:,.0f}x '
                f'| {self.export_fvcore_s / self.analytic_s:,.0f}x '
                f'| {"yes" if flops_ok else "NO"} '
                f'| {"yes" if params_ok else "NO"} |')


TABLE_HEADER = (
    '| model | configs | analytic us/query | fvcore ms/query '
    '| export+fvcore ms/query | speedup (fvcore) | speedup (export+fvcore) '
    '| FLOPs exact | params exact |\n'
    '|---|---|---|---|---|---|---|---|---|')


def parse_args() -> argparse.Namespace:
    parser = models_parser(__doc__.splitlines()[0], DEFAULT_MODELS)
    parser.add_argument('--num-configs', type=int, default=20,
                        help='random channel configs per model')
    parser.add_argument('--seed', type=int, default=0,
                        help='config i is sampled with random.Random(seed+i)')
    parser.add_argument('--analytic-repeats', type=int, default=500,
                        help='times every config is estimated analytically')
    parser.add_argument('--input-size', type=int, default=224,
                        help='height and width of the input')
    parser.add_argument('--threads', type=int, default=None,
                        help="torch intra-op threads; None leaves torch's "
                        'default. 1 is steadier on a CPU shared with other '
                        'jobs')
    return parser.parse_args()


def sample_configs(supernet: ChannelSupernet, num: int,
                   seed: int) -> list[dict[str, int]]:
    """``num`` seeded random channel configs; the supernet ends at max."""
    mutator = supernet.mutator
    configs = [mutator.sample(random.Random(seed + i)) for i in range(num)]
    mutator.set_max()
    return configs


def time_analytic(supernet: ChannelSupernet,
                  configs: list[dict[str, int]], repeats: int) -> float:
    """Seconds per ``mutator.estimate(choices)`` query."""
    estimate = supernet.mutator.estimate
    start = time.perf_counter()
    for _ in range(repeats):
        for choices in configs:
            estimate(choices)
    return (time.perf_counter() - start) / (repeats * len(configs))


def fvcore_macs(static: torch.nn.Module, sample: torch.Tensor) -> int:
    """fvcore's conv + linear multiply-accumulates of one sample."""
    analysis = FlopCountAnalysis(LogitsModule(static), sample)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    by_operator = analysis.by_operator()
    return sum(by_operator.get(op, 0) for op in FVCORE_MAC_OPERATORS)


def count_exported(supernet: ChannelSupernet, choices: dict[str, int],
                   sample: torch.Tensor) -> tuple[int, int, float, float]:
    """Exports ``choices`` and counts the static model with fvcore.

    Returns:
        MACs, params, seconds to export and seconds to count.
    """
    start = time.perf_counter()
    supernet.mutator.set_choices(choices)
    static = supernet.mutator.export_static().eval()
    exported = time.perf_counter()
    with torch.no_grad():
        macs = fvcore_macs(static, sample)
    done = time.perf_counter()
    params = sum(p.numel() for p in static.parameters())
    return macs, params, exported - start, done - exported


def measure_model(name: str, args: argparse.Namespace) -> ModelResult:
    """Times both counters on ``name`` and compares their counts.

    The max and min configs are counted first, untimed, as fvcore's warm-up
    (its first traces are several times slower); they are checked like the
    random ones.
    """
    supernet = build_classifier_supernet(name, args.input_size).eval()
    mutator = supernet.mutator
    configs = sample_configs(supernet, args.num_configs, args.seed)
    analytic_s = time_analytic(supernet, configs, args.analytic_repeats)

    sample = torch.randn(1, 3, args.input_size, args.input_size)
    mutator.set_min()
    warm_up = [('max', mutator.max_widths), ('min', mutator.current_choices())]
    checked = warm_up + [(f'seed {args.seed + i}', c)
                         for i, c in enumerate(configs)]
    export_total = fvcore_total = 0.0
    mismatches = []
    for index, (label, choices) in enumerate(checked):
        macs, params, export_s, fvcore_s = count_exported(supernet, choices,
                                                          sample)
        if index >= len(warm_up):
            export_total += export_s
            fvcore_total += fvcore_s
        estimate = mutator.estimate(choices)
        for metric, counted in (('flops', macs), ('params', params)):
            if estimate[metric] != counted:
                mismatches.append(f'{metric} of config {label}: analytic '
                                  f'{estimate[metric]:.0f} vs counted '
                                  f'{counted}')
    mutator.set_max()
    return ModelResult(name, len(configs), analytic_s,
                       fvcore_total / len(configs),
                       (export_total + fvcore_total) / len(configs),
                       mismatches)


def main() -> int:
    args = parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    # torch.jit.trace, which fvcore uses, warns that it is deprecated.
    warnings.filterwarnings('ignore', category=FutureWarning)
    print(f'torch {torch.__version__}, intra-op threads: '
          f'{torch.get_num_threads()}, {os.cpu_count()} CPUs, load average '
          f'{os.getloadavg()[0]:.1f}; '
          f'input 3x{args.input_size}x{args.input_size}; '
          f'{args.num_configs} configs per model (seeds {args.seed}..'
          f'{args.seed + args.num_configs - 1}); analytic time averaged '
          f'over {args.analytic_repeats} repeats of every config')
    results = []
    for name in args.models:
        print(f'measuring {name} ...', flush=True)
        results.append(measure_model(name, args))
    print(f'load average {os.getloadavg()[0]:.1f} at the end\n')
    print(TABLE_HEADER)
    for result in results:
        print(result.row())

    mismatches = [f'{r.model}: {m}' for r in results for m in r.mismatches]
    if mismatches:
        print(f'\nMISMATCH: {len(mismatches)} count(s) differ between the '
              'analytic estimator and the exported model:', file=sys.stderr)
        for line in mismatches:
            print(f'  {line}', file=sys.stderr)
        return 1
    print('\nall FLOPs (analytic vs fvcore conv+linear) and params (analytic '
          'vs sum of numel of the exported model) are exactly equal')
    return 0


if __name__ == '__main__':
    sys.exit(main())
