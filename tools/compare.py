"""Compares the channel-search methods on one dataset and budget.

Every method of the config searches under the same FLOPs budget (or the
latency of the uniform-width baseline, measured here); each result and
the baseline are retrained with one recipe and the same seeds, tested, and
measured (FLOPs, params, latency from one table of this CPU, measured
latency). Writes compare.md (the table), accuracy_flops.png and
results.json to the work dir. A killed run continues where it stopped
when started again with the same --work-dir.

Example:
    python tools/compare.py configs/compare/fashion_mnist.py \
        --work-dir work_dirs/compare
"""
import argparse
import json
import os
import os.path as osp

import torch
from mmengine.config import DictAction
from mmengine.logging import MMLogger

from mmchansearch.analysis import LogitsModule
from mmchansearch.cli import load_config, run_tool
from mmchansearch.comparison import (
    ComparisonRow,
    SearchContext,
    ToolRunner,
    comparison_table,
    derive_config,
    measure_networks,
    plot_comparison,
    train_and_test,
)
from mmchansearch.comparison.measure import static_network
from mmchansearch.errors import ConfigError
from mmchansearch.fileio import atomic_write_text
from mmchansearch.latency_table import measure_latencies
from mmchansearch.registry import COMPARED_METHODS


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='compare config '
                        '(configs/compare/*.py)')
    parser.add_argument('--work-dir', help='where everything goes '
                        '(default: ./work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, xxx=yyy')
    parser.add_argument('--methods', nargs='*', metavar='KEY',
                        help='run only these keys of `methods` (and the '
                        'baseline), e.g. to share the work between processes '
                        'using the same --work-dir; a later run without it '
                        'collects everything into the table')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads of the latency measurements')
    return parser.parse_args()


def folder_name(name: str) -> str:
    return ''.join(c if c.isalnum() else '_' for c in name.lower())


def budget_of(cfg, baseline_net, work_dir: str) -> dict:
    """The FLOPs budget and the baseline's measured latency (kept in
    budget.json so a resumed run searches for the same latency)."""
    path = osp.join(work_dir, 'budget.json')
    if osp.isfile(path):
        with open(path) as f:
            budget = json.load(f)
        if budget['flops'] != cfg.flops_budget:
            raise ConfigError(f'{path} is of another budget '
                              f'({budget["flops"]:g} FLOPs); use another '
                              '--work-dir.')
        return budget
    latency = measure_latencies(dict(baseline=LogitsModule(baseline_net)),
                                cfg.input_shape, repeats=20)['baseline']
    budget = dict(flops=cfg.flops_budget, latency=latency)
    atomic_write_text(path, json.dumps(budget, indent=1))
    return budget


def retrain(cfg, config: str, folder: str) -> list:
    """Trains and tests the retraining config with every seed; returns the
    test top-1s."""
    runner = ToolRunner(osp.join(folder, 'retrain'))
    return [train_and_test(runner, config, f'seed{seed}',
                           [f'randomness.seed={seed}'])
            for seed in cfg.retrain.seeds]


def select_methods(cfg, keys: list[str] | None) -> list:
    """The baseline, then the methods of ``keys`` (default: all)."""
    keys = list(cfg.methods) if keys is None else keys
    unknown = set(keys) - set(cfg.methods)
    if unknown:
        raise ConfigError(f'--methods {sorted(unknown)}: not in the '
                          f'config\'s methods {list(cfg.methods)}.')
    methods = [COMPARED_METHODS.build(m) for m in
               [cfg.baseline, *(cfg.methods[k] for k in keys)]]
    names = [folder_name(m.name) for m in methods]
    if len(set(names)) != len(names):
        raise ConfigError('compare config: two methods have the same name '
                          f'({[m.name for m in methods]}); name them apart.')
    return methods


def warn_over_budget(rows: list, budget: dict, tolerance: float) -> None:
    """Logs the results above their budget by more than ``tolerance``
    (FLOPs counted, latency measured)."""
    logger = MMLogger.get_current_instance()
    for row in rows[1:]:
        value = row.costs.flops if row.budget == 'flops' else \
            row.costs.measured_ms
        if value > budget[row.budget] * (1 + tolerance):
            logger.warning(f'{row.name}: {row.budget} {value:g} is over the '
                           f'budget {budget[row.budget]:g}.')


def write_report(rows: list, budget: dict, cfg, threads: int,
                 work_dir: str) -> str:
    """Writes compare.md, results.json and accuracy_flops.png; returns the
    Markdown."""
    text = (f'Budget: {budget["flops"] / 1e6:g}M FLOPs; latency budget '
            f'{budget["latency"]:.3f} ms (the baseline measured on this CPU, '
            f'batch 1, {threads} thread(s)). Top-1 on the test set, mean +- '
            f'std over seeds {list(cfg.retrain.seeds)}.\n\n'
            + comparison_table(rows))
    atomic_write_text(osp.join(work_dir, 'compare.md'), text)
    atomic_write_text(osp.join(work_dir, 'results.json'), json.dumps(
        dict(budget=budget, rows=[dict(name=r.name, budget=r.budget,
                                       top1=list(r.top1),
                                       search_minutes=r.search_minutes,
                                       **r.costs.asdict()) for r in rows]),
        indent=1))
    plot_comparison(rows, osp.join(work_dir, 'accuracy_flops.png'))
    return text


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    work_dir = args.work_dir or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0])
    os.makedirs(work_dir, exist_ok=True)
    logger = MMLogger.get_instance('mmchansearch', log_file=osp.join(
        work_dir, 'compare.log'))
    torch.set_num_threads(args.threads)
    methods = select_methods(cfg, args.methods)

    budget = dict(flops=cfg.flops_budget)
    results, networks = [], {}
    for method in methods:
        folder = osp.join(work_dir, folder_name(method.name))
        runner = ToolRunner(folder)
        logger.info(f'{method.name}: searching under {method.budget} '
                    f'budget {budget[method.budget]:g}')
        found = method.search(SearchContext(folder, budget, runner,
                                            cfg.get('data_root')))
        config = derive_config(method.retrain, [
            method.retrain_overrides, cfg.retrain.overrides, found],
            osp.join(folder, 'retrain.py'), cfg.get('data_root'))
        networks[method.name] = static_network(config)
        if method is methods[0]:  # the baseline sets the latency budget
            budget.update(budget_of(cfg, networks[method.name], work_dir))
        top1 = retrain(cfg, config, folder)
        results.append((method, top1, runner.minutes()))
        logger.info(f'{method.name}: test top-1 {top1}')

    costs = measure_networks(networks, cfg.input_shape,
                             osp.join(work_dir, 'latency_table.json'),
                             calibrate_on=methods[0].name)
    rows = [ComparisonRow(m.name, m.budget, costs[m.name], top1, minutes)
            for m, top1, minutes in results]
    warn_over_budget(rows, budget, cfg.tolerance)
    print(write_report(rows, budget, cfg, args.threads, work_dir))


if __name__ == '__main__':
    run_tool(main)
