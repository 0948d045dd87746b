"""Prints how much of each model the toolbox can search, and checks counts.

One table row per config (a plain mmpretrain classifier config or a
toolbox config): channel groups found, output channels of conv and linear
layers that are searchable / fixed, the share of the FLOPs in layers that
touch a searchable group, the supernet build time (trace + analysis), the
full model's FLOPs and params against fvcore's conv + linear count and
``sum(p.numel())`` (exact: yes/no), and a random subnet exported to a
static model: max |logit difference| to the supernet at that subnet
(relative to max |logit|) and its FLOPs (fvcore) and params against the
estimator. A model that fails gets its error text in its row.

A config path may end in ``@SIZE`` (e.g. ``vgg11_8xb32_in1k.py@224``) to
trace that model at SIZE x SIZE instead of --shape (VGG's classifier needs
224).

Examples:
    python tools/analysis_tools/coverage.py CONFIG1 CONFIG2 --shape 64 64
    python tools/analysis_tools/coverage.py CONFIG... --out-md table.md \
        --json coverage.json
"""
from __future__ import annotations

import argparse
import json
import os.path as osp

from mmengine.logging import MMLogger

from mmchansearch.cli import DictAction, input_shape_of, load_config, run_tool
from mmchansearch.coverage import CoverageReport, check_coverage
from mmchansearch.errors import ConfigError
from mmchansearch.fileio import atomic_write_text

HEADER = ('| model | input | groups | searchable / fixed channels | '
          'searchable FLOPs | build s | FLOPs (est / fvcore) | '
          'params (est / torch) | exact | export: logit diff | '
          'export: FLOPs est / fvcore | export: params est / torch |\n'
          '|---|---|---|---|---|---|---|---|---|---|---|---|')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='+', metavar='CONFIG',
                        help='config files, each optionally ending in @SIZE')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        default=(64, 64), help='input size every model is '
                        'traced and checked at (default: 64 64)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seeds the weights, the subnet and the inputs')
    parser.add_argument('--out-md', help='also write the table to this '
                        'Markdown file')
    parser.add_argument('--json', help='also write every report (with the '
                        'analysis\' reasons for fixed channels) as JSON')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override keys of every config, xxx=yyy')
    return parser.parse_args()


def split_spec(spec: str, shape: tuple[int, int]) -> tuple[str, list[int]]:
    """(config path, [H, W]) of ``CONFIG`` or ``CONFIG@SIZE``."""
    path, _, size = spec.partition('@')
    if not size:
        return path, list(shape)
    if not size.isdigit() or int(size) < 1:
        raise ConfigError(f'{spec}: expected CONFIG@SIZE with a positive '
                          f'integer SIZE, got {size!r}.')
    return path, [int(size)] * 2


def _m(value: float | None, unit: float = 1e6) -> str:
    return '-' if value is None else f'{value / unit:.3f}M'


def table_row(report: CoverageReport) -> str:
    """One Markdown table row of a report."""
    c, h, w = report.input_shape
    cells = [report.model, f'{h}x{w}']
    if report.error and report.groups is None:
        return '| ' + ' | '.join(cells + [f'error: {report.error}']
                                 + ['-'] * 9) + ' |'
    cells += [
        str(report.groups),
        f'{report.searchable_channels} / {report.fixed_channels}',
        f'{report.searchable_flops:.1%}',
        f'{report.seconds:.2f}',
        f'{_m(report.flops)} / {_m(report.fvcore_flops)}',
        f'{_m(report.params)} / {_m(report.torch_params)}',
        'yes' if report.exact else '**no**',
    ]
    if report.error:
        cells += [f'error: {report.error}', '-', '-']
    elif report.logit_diff is None:
        cells += ['no group', '-', '-']
    else:
        mark = '' if report.export_exact else ' **(differ)**'
        cells += [f'{report.logit_diff:.1e}',
                  f'{_m(report.subnet_flops)} / '
                  f'{_m(report.static_flops)}{mark}',
                  f'{_m(report.subnet_params)} / '
                  f'{_m(report.static_params)}{mark}']
    return '| ' + ' | '.join(cells) + ' |'


def main() -> None:
    args = parse_args()
    # the analysis warns about every fixed layer; the reports keep them
    MMLogger.get_current_instance().setLevel('ERROR')
    specs = [split_spec(spec, args.shape) for spec in args.configs]
    reports = []
    print(HEADER, flush=True)
    for path, hw in specs:
        name = osp.splitext(osp.basename(path))[0]
        try:
            cfg = load_config(path, args.cfg_options)
        except Exception as err:  # reported in its row
            report = CoverageReport(name, (3, *hw), error=str(err))
        else:
            report = check_coverage(cfg, name, input_shape_of(cfg, hw),
                                    args.seed)
        reports.append(report)
        print(table_row(report), flush=True)
    table = '\n'.join([HEADER] + [table_row(r) for r in reports]) + '\n'
    if args.out_md:
        atomic_write_text(args.out_md, table)
        print(f'wrote {args.out_md}')
    if args.json:
        atomic_write_text(args.json, json.dumps(
            [r.to_dict() for r in reports], indent=1) + '\n')
        print(f'wrote {args.json}')


if __name__ == '__main__':
    run_tool(main)
