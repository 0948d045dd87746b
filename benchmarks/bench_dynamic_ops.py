"""Train-step time of the supernet at a config vs its exported static model.

For each model and each config (every group at max width, every group at
about half width), one forward + backward on a random batch is timed for the
supernet set to the config and for the static model exported from it. The
two are interleaved in one run (ABBA order) after warm-up steps, so machine
drift hits both alike. The table gives median step times, the median of
the ratios of the steps paired in time (the headline figure) and the ratio of
the fastest steps (the least disturbed on a machine shared with other jobs).

Example:
    python benchmarks/bench_dynamic_ops.py
    python benchmarks/bench_dynamic_ops.py --device cuda --input-size 224
"""
from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from statistics import median

import torch
import torch.nn.functional as F
from classifiers import build_classifier_supernet, models_parser
from torch import nn

from mmchansearch.analysis import LogitsModule
from mmchansearch.mutator import ChannelMutator

DEFAULT_MODELS = ('MobileNetV2-1.0x', 'ResNet-18')
TARGET_RATIO = 1.10


def max_config(mutator: ChannelMutator) -> dict[str, int]:
    """Every group at its max width."""
    return mutator.max_widths


def half_config(mutator: ChannelMutator) -> dict[str, int]:
    """Every group at the candidate width nearest half its max width."""
    return {group: min(mutator.candidates(group),
                       key=lambda width: abs(2 * width - top))
            for group, top in mutator.max_widths.items()}


CONFIGS: dict[str, Callable[[ChannelMutator], dict[str, int]]] = {
    'max': max_config,
    'half': half_config,
}


@dataclass
class Timing:
    """Train-step times of one model at one config.

    Attributes:
        model: the classifier's name.
        config: the config's name.
        flops: analytic FLOPs of one sample at this config.
        supernet_s: seconds of each timed supernet step.
        static_s: seconds of each timed static step; step i was taken right
            before or after supernet step i.
    """
    model: str
    config: str
    flops: float
    supernet_s: list[float]
    static_s: list[float]

    @property
    def ratio(self) -> float:
        """Median over step pairs of supernet step / static step."""
        return median(a / b for a, b in zip(self.supernet_s, self.static_s))

    @property
    def min_ratio(self) -> float:
        """Fastest supernet step over fastest static step."""
        return min(self.supernet_s) / min(self.static_s)

    def row(self) -> str:
        """One row of the results table."""
        return (f'| {self.model} | {self.config} | {self.flops / 1e6:.0f} '
                f'| {median(self.supernet_s) * 1e3:.0f} '
                f'| {median(self.static_s) * 1e3:.0f} '
                f'| {self.ratio:.3f} | {self.min_ratio:.3f} '
                f'| {"yes" if self.ratio <= TARGET_RATIO else "NO"} |')


TABLE_HEADER = (
    '| model | config | MFLOPs/sample | supernet ms/step (median) '
    '| static ms/step (median) | ratio (median of pairs) '
    f'| ratio (fastest steps) | ratio <= {TARGET_RATIO:.2f} |\n'
    '|---|---|---|---|---|---|---|---|')


def parse_args() -> argparse.Namespace:
    parser = models_parser(__doc__.splitlines()[0], DEFAULT_MODELS)
    parser.add_argument('--configs', nargs='+', default=list(CONFIGS),
                        choices=list(CONFIGS), help='configs to measure')
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu',
                        help='where both models run')
    parser.add_argument('--batch-size', type=int, default=32,
                        help='samples per training step')
    parser.add_argument('--input-size', type=int, default=112,
                        help='height and width of the input (224 takes '
                        'several seconds a step on a 2-core CPU)')
    parser.add_argument('--threads', type=int, default=None,
                        help="torch intra-op threads; None leaves torch's "
                        'default. 1 is steadier on a CPU shared with other '
                        'jobs')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed steps of each model per config')
    parser.add_argument('--repeats', type=int, default=10,
                        help='timed steps of each model per config')
    return parser.parse_args()


def synchronize(device: torch.device) -> None:
    """Waits for queued kernels, so that wall-clock time covers them."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def train_step_seconds(model: nn.Module, inputs: torch.Tensor,
                       labels: torch.Tensor, device: torch.device) -> float:
    """Seconds of one forward + backward (gradients cleared beforehand)."""
    model.zero_grad(set_to_none=True)
    synchronize(device)
    start = time.perf_counter()
    F.cross_entropy(model(inputs), labels).backward()
    synchronize(device)
    return time.perf_counter() - start


def time_pair(supernet: nn.Module, static: nn.Module, inputs: torch.Tensor,
              labels: torch.Tensor, warmup: int, repeats: int,
              device: torch.device) -> tuple[list[float], list[float]]:
    """Interleaved step times of two models, in ABBA order.

    Returns:
        The supernet's and the static model's timed step seconds.
    """
    models = (supernet, static)
    for _ in range(warmup):
        for model in models:
            train_step_seconds(model, inputs, labels, device)
    times: tuple[list[float], list[float]] = ([], [])
    for repeat in range(repeats):
        order = (0, 1) if repeat % 2 == 0 else (1, 0)
        for index in order:
            times[index].append(
                train_step_seconds(models[index], inputs, labels, device))
    return times


def measure_model(name: str, args: argparse.Namespace,
                  device: torch.device) -> list[Timing]:
    """Times supernet and static steps of ``name`` at each config."""
    supernet = build_classifier_supernet(name, args.input_size)
    mutator = supernet.mutator
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(args.batch_size, 3, args.input_size,
                         args.input_size, generator=generator).to(device)
    labels = torch.randint(0, 1000, (args.batch_size, ),
                           generator=generator).to(device)
    timings = []
    for config in args.configs:
        print(f'  {name} at {config} config ...', flush=True)
        choices = CONFIGS[config](mutator)
        mutator.set_choices(choices)
        static = mutator.export_static().to(device).train()
        supernet.to(device).train()
        supernet_s, static_s = time_pair(
            LogitsModule(supernet.architecture), LogitsModule(static),
            inputs, labels, args.warmup, args.repeats, device)
        timings.append(Timing(name, config, mutator.estimate(choices)['flops'],
                              supernet_s, static_s))
        del static
    return timings


def load_average() -> str:
    """The 1-minute load average: other jobs on the CPUs show up here."""
    return f'load average {os.getloadavg()[0]:.1f}'


def describe_machine(device: torch.device) -> str:
    """Torch version, threads, CPU load and, on CUDA, the GPU's name."""
    text = (f'torch {torch.__version__}, intra-op threads: '
            f'{torch.get_num_threads()}, inter-op threads: '
            f'{torch.get_num_interop_threads()}')
    text += f', {os.cpu_count()} CPUs, {load_average()}'
    if device.type == 'cuda':
        text += (f', {torch.cuda.get_device_name(device)}, cudnn.benchmark='
                 f'{torch.backends.cudnn.benchmark}')
    return text


def main() -> None:
    args = parse_args()
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no CUDA device is available.')
    device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f'{describe_machine(device)}; device {args.device}; batch '
          f'{args.batch_size}; input 3x{args.input_size}x{args.input_size}; '
          f'train mode, forward + backward; {args.warmup} warm-up and '
          f'{args.repeats} timed steps of each model per config')
    timings = []
    for name in args.models:
        timings.extend(measure_model(name, args, device))
    print()
    print(TABLE_HEADER)
    for timing in timings:
        print(timing.row())
    print(f'\n{load_average()} at the end')
    worst = max(timings, key=lambda t: t.ratio)
    verdict = 'met' if worst.ratio <= TARGET_RATIO else 'MISSED'
    print(f'\ntarget supernet/static <= {TARGET_RATIO:.2f} {verdict}: worst '
          f'ratio {worst.ratio:.3f} ({worst.model} at {worst.config})')


if __name__ == '__main__':
    main()
