"""Plots people would rather look at than tables."""
from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from .fileio import atomic_replace_with  # noqa: E402


def _save(fig, path: str) -> None:
    fig.tight_layout()
    atomic_replace_with(path, lambda tmp: fig.savefig(tmp, dpi=120,
                                                      format='png'))
    plt.close(fig)


def plot_search_trajectory(history: Sequence[dict], targets: Sequence[float],
                           metric: str, path: str) -> None:
    """Accuracy against the constrained resource along a greedy search."""
    fig, ax = plt.subplots(figsize=(6, 4))
    usage = [h['usage'] for h in history]
    ax.plot(usage, [h['accuracy'] for h in history], '.-', lw=1)
    for target in targets:
        ax.axvline(target, color='gray', ls='--', lw=0.8)
    ax.invert_xaxis()
    ax.set_xlabel(f'{metric} (search goes right)')
    ax.set_ylabel('held-out top-1 (%, batch-stat BN)')
    ax.set_title('greedy slimming trajectory')
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_channel_configs(configs: Mapping[str, Mapping[str, int]],
                         max_widths: Mapping[str, int], path: str) -> None:
    """Each group's width relative to the supernet, configs side by side."""
    groups = list(max_widths)
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(groups)) + 2, 4.5))
    bar = 0.8 / max(len(configs), 1)
    for i, (label, widths) in enumerate(configs.items()):
        ratios = [widths[g] / max_widths[g] for g in groups]
        ax.bar([x + i * bar for x in range(len(groups))], ratios, bar,
               label=label)
    ax.set_xticks([x + bar * (len(configs) - 1) / 2
                   for x in range(len(groups))])
    ax.set_xticklabels(groups, rotation=90, fontsize=7)
    ax.set_ylabel('width / supernet width')
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, loc='upper left', bbox_to_anchor=(1.0, 1.0))
    ax.set_title('channels per group')
    _save(fig, path)


def plot_accuracy_vs_flops(points: Mapping[str, Sequence[tuple]],
                           path: str) -> None:
    """Accuracy-FLOPs fronts: label -> [(flops, accuracy), ...]; a third
    value per point, if given, is drawn as the accuracy's error bar."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, series in points.items():
        series = sorted(series)
        ax.errorbar([p[0] / 1e6 for p in series], [p[1] for p in series],
                    yerr=[p[2] if len(p) > 2 else 0 for p in series],
                    fmt='o-', capsize=3, label=label)
    ax.set_xlabel('FLOPs (M, conv + linear MACs)')
    ax.set_ylabel('top-1 (%)')
    ax.grid(alpha=0.3)
    ax.legend()
    _save(fig, path)


def plot_paired_gaps(gaps: Mapping[str, Sequence[float]], path: str,
                     title: str) -> None:
    """Paired differences over seeds: label -> one top-1 gap per seed
    (e.g. searched - uniform), drawn as the seeds' points with their mean
    +- std beside them; the zero line is "no difference"."""
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(gaps), 4))
    for x, values in enumerate(gaps.values()):
        values = list(values)
        ax.plot([x - 0.1] * len(values), values, 'o', color='gray',
                alpha=0.7, label='one seed' if x == 0 else None)
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        ax.errorbar([x + 0.1], [statistics.mean(values)], yerr=[std],
                    fmt='s', color='C0',
                    capsize=4, label='mean +- std' if x == 0 else None)
    ax.axhline(0, color='black', lw=0.8)
    ax.set_xticks(range(len(gaps)))
    ax.set_xticklabels(list(gaps), fontsize=8)
    ax.set_xlim(-0.6, len(gaps) - 0.4)
    ax.set_ylabel('top-1 difference (points)')
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, axis='y')
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_channel_adjustment(before: Mapping[str, int],
                            after: Mapping[str, int], path: str) -> None:
    """Channels per group before and after an adjustment (Network
    Adjustment's Figure 4): increases and decreases in two colors."""
    groups = list(before)
    x = range(len(groups))
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(groups)) + 2, 4.5))
    ax.bar(x, [min(before[g], after[g]) for g in groups], 0.7,
           color='#9e9e9e', label='kept')
    ax.bar(x, [max(after[g] - before[g], 0) for g in groups], 0.7,
           bottom=[before[g] for g in groups], color='#2e7d32',
           label='increased')
    ax.bar(x, [max(before[g] - after[g], 0) for g in groups], 0.7,
           bottom=[after[g] for g in groups], color='#c62828',
           label='decreased')
    ax.set_xticks(list(x))
    ax.set_xticklabels(groups, rotation=90, fontsize=7)
    ax.set_ylabel('channels')
    ax.legend(fontsize=8)
    ax.set_title('channels per group: before and after adjustment')
    _save(fig, path)


def plot_channel_curves(groups: Mapping[str, Sequence[Sequence[int]]],
                        path: str) -> None:
    """Block widths against the block index, one color per group of
    networks (ReXNet's Figure 2: top, middle and bottom candidates).

    Args:
        groups: label -> block widths of each network in the group.
        path: where the PNG goes.
    """
    fig, ax = plt.subplots(figsize=(6, 4))
    colors = ('#c62828', '#9e9e9e', '#1565c0', '#2e7d32', '#6a1b9a')
    for (label, networks), color in zip(groups.items(), colors):
        for i, channels in enumerate(networks):
            ax.plot(range(len(channels)), channels, '.-', color=color,
                    alpha=0.6, lw=1, label=label if i == 0 else None)
    ax.set_xlabel('block index')
    ax.set_ylabel('output channels')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title('channel configurations by accuracy')
    _save(fig, path)


def plot_arch_distributions(history: Sequence[dict],
                            options: Mapping[str, Sequence[int]],
                            path: str) -> None:
    """Expected width (as a fraction of the widest candidate) of every
    searched group per epoch, from the learned distributions."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    groups = list(history[0]['probabilities']) if history else []
    epochs = [h['epoch'] for h in history]
    for group in groups:
        widths = options[group]
        expected = [sum(p * w for p, w in zip(h['probabilities'][group],
                                              widths)) / widths[-1]
                    for h in history]
        ax.plot(epochs, expected, lw=1, label=group)
    ax.set_xlabel('epoch')
    ax.set_ylabel('expected width / widest candidate')
    ax.set_ylim(0, 1.05)
    if len(groups) <= 30:
        ax.legend(fontsize=6, loc='upper left', bbox_to_anchor=(1.0, 1.0))
    ax.set_title('architecture distributions during the search')
    _save(fig, path)


def plot_block_distributions(probabilities: Mapping[str, Sequence[float]],
                             options: Mapping[str, Sequence[str]],
                             path: str) -> None:
    """The learned probability of every candidate block per layer, as a
    layers x blocks heat map (blank: not a candidate of that layer)."""
    blocks = list(dict.fromkeys(b for names in options.values()
                                for b in names))
    layers = list(probabilities)
    grid = [[float('nan')] * len(blocks) for _ in layers]
    for row, layer in zip(grid, layers):
        for name, prob in zip(options[layer], probabilities[layer]):
            row[blocks.index(name)] = prob
    fig, ax = plt.subplots(figsize=(1 + 0.7 * len(blocks),
                                    1.5 + 0.3 * len(layers)))
    image = ax.imshow(grid, cmap='viridis', vmin=0, vmax=1, aspect='auto')
    ax.set_xticks(range(len(blocks)), blocks, rotation=45, ha='right')
    ax.set_yticks(range(len(layers)), layers, fontsize=7)
    fig.colorbar(image, ax=ax, label='probability')
    ax.set_title('learned block distributions')
    _save(fig, path)
