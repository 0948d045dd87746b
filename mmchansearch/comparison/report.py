"""The comparison's Markdown table and accuracy-FLOPs plot."""
from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from ..visualization import plot_accuracy_vs_flops
from .measure import NetworkCosts


@dataclass
class ComparisonRow:
    """One compared network: its costs, test top-1 per seed and the
    minutes its search took (0 for the baseline)."""
    name: str
    budget: str
    costs: NetworkCosts
    top1: Sequence[float]
    search_minutes: float

    @property
    def top1_mean(self) -> float:
        return statistics.fmean(self.top1)

    @property
    def top1_std(self) -> float:
        return statistics.stdev(self.top1) if len(self.top1) > 1 else 0.0


def comparison_table(rows: Sequence[ComparisonRow]) -> str:
    """Markdown: method, budget, FLOPs, params, LUT and measured latency,
    top-1 mean +- std over the seeds, search minutes."""
    lines = ['| method | budget | FLOPs (M) | params (M) | LUT latency (ms) '
             '| measured latency (ms) | top-1 (%) | search (min) |',
             '|---|---|---|---|---|---|---|---|']
    for row in rows:
        c = row.costs
        lines.append(
            f'| {row.name} | {row.budget} | {c.flops / 1e6:.2f} | '
            f'{c.params / 1e6:.3f} | {c.lut_ms:.3f} | {c.measured_ms:.3f} | '
            f'{row.top1_mean:.2f} +- {row.top1_std:.2f} | '
            f'{row.search_minutes:.1f} |')
    return '\n'.join(lines) + '\n'


def plot_comparison(rows: Sequence[ComparisonRow], path: str) -> None:
    """Test top-1 (mean, std as error bar) against FLOPs, one point per
    method."""
    plot_accuracy_vs_flops(
        {row.name: [(row.costs.flops, row.top1_mean, row.top1_std)]
         for row in rows}, path)
