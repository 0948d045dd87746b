"""Rank of layer outputs: ReXNet's random-layer study or trained models.

Without --model: the random-layer study (ReXNet paper, Fig. 1): the average
rank ratio rank(f(WX)) / d_out of random single layers against d_in / d_out,
per nonlinearity and layer kind. Writes rank_ratio.csv and rank_ratio.png.

With --model: the rank of every conv layer's output (or, --features act,
every nonlinearity's) of one or two trained classifiers on images of the
config's val dataloader, and the cumulative singular values of chosen
layers (Fig. 5 style). Writes feature_rank.csv, feature_rank.png and
cumulative_singular_values.png.

Ranks count singular values above --rtol times the largest.

Examples:
    python tools/analysis_tools/rank_analysis.py --num-layers 100 \
        --out-dir work_dirs/rank_study
    python tools/analysis_tools/rank_analysis.py --model CONFIG \
        --checkpoint CKPT --model2 CONFIG2 --checkpoint2 CKPT2 \
        --num-images 512 --out-dir work_dirs/rank_models
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import os.path as osp
from collections.abc import Iterator

import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope
from mmengine.utils import ProgressBar

from mmchansearch.checkpoint import (
    load_state_strictly,
    read_checkpoint,
    state_dict_of,
)
from mmchansearch.cli import DictAction, load_config, run_tool
from mmchansearch.errors import ConfigError
from mmchansearch.fileio import (
    atomic_replace_with,
    atomic_write_text,
)
from mmchansearch.rank_analysis import (
    ACTIVATION_TYPES,
    ACTIVATIONS,
    KINDS,
    Spectrum,
    feature_spectra,
    rank_ratio_sweep,
)
from mmchansearch.registry import MODELS


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out-dir', default='work_dirs/rank_analysis',
                        help='where the CSV and PNG files go')
    parser.add_argument('--rtol', type=float, default=0.01,
                        help='singular values below rtol times the largest '
                        'count as zero (default 0.01; with a machine-'
                        'precision tolerance every nonlinearity gives full '
                        'rank in the random-layer study)')
    study = parser.add_argument_group('random-layer study (no --model)')
    study.add_argument('--num-layers', type=int, default=20,
                       help='random layers per kind, nonlinearity and ratio')
    study.add_argument('--seed', type=int, default=0)
    study.add_argument('--kinds', nargs='+', default=list(KINDS),
                       choices=KINDS, help='layer kinds')
    study.add_argument('--activations', nargs='+', default=list(ACTIVATIONS),
                       choices=ACTIVATIONS, help='nonlinearities')
    study.add_argument('--num-ratios', type=int, default=10,
                       help='d_in / d_out takes this many values evenly '
                       'spaced in [0.1, 1.0]')
    study.add_argument('--d-out', type=int, nargs=2, default=(32, 96),
                       metavar=('MIN', 'MAX'),
                       help='range of the output channels')
    models = parser.add_argument_group('trained models (--model)')
    models.add_argument('--model', help='config of the (first) classifier')
    models.add_argument('--checkpoint', help='its weights (random without)')
    models.add_argument('--model2', help='config of a classifier to compare')
    models.add_argument('--checkpoint2', help='its weights')
    models.add_argument('--num-images', type=int, default=256,
                        help='val images the features are measured on')
    models.add_argument('--num-workers', type=int, default=2,
                        help='dataloader workers')
    models.add_argument('--device', default='cpu',
                        help='where the models run, e.g. cuda')
    models.add_argument('--features', choices=['conv', 'act'],
                        default='conv', help='measure the outputs of the '
                        'conv layers (default) or of the nonlinearities')
    models.add_argument('--layers', nargs='+',
                        help='layers whose cumulative singular values are '
                        'plotted (default: the last one measured)')
    models.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override keys of both configs, xxx=yyy')
    args = parser.parse_args()
    if args.rtol < 0:
        parser.error(f'--rtol {args.rtol}: must be >= 0')
    if args.model is None and (args.checkpoint or args.model2):
        parser.error('--checkpoint and --model2 need --model')
    if args.checkpoint2 and not args.model2:
        parser.error('--checkpoint2 needs --model2')
    return args


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _save_figure(fig, path: str) -> None:
    plt = _pyplot()
    fig.tight_layout()
    atomic_replace_with(path, lambda tmp: fig.savefig(tmp, dpi=120,
                                                      format='png'))
    plt.close(fig)


def _write_csv(rows: list[dict], path: str) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, text.getvalue())


# ------------------------------------------------------------ layer study
def run_study(args: argparse.Namespace) -> None:
    if args.num_layers < 1 or args.num_ratios < 1:
        raise ConfigError('--num-layers and --num-ratios must be >= 1, got '
                          f'{args.num_layers} and {args.num_ratios}.')
    low, high = args.d_out
    if not 1 <= low <= high:
        raise ConfigError(f'--d-out {low} {high}: expected 1 <= MIN <= MAX.')
    n = args.num_ratios
    ratios = [round(0.1 + 0.9 * i / (n - 1), 4) for i in range(n)] \
        if n > 1 else [1.0]
    bar = ProgressBar(len(args.kinds) * len(args.activations) * n)
    rows = rank_ratio_sweep(args.kinds, args.activations, ratios,
                            args.num_layers, (low, high), args.seed,
                            args.rtol, progress=bar.update)
    print()
    csv_path = osp.join(args.out_dir, 'rank_ratio.csv')
    png_path = osp.join(args.out_dir, 'rank_ratio.png')
    _write_csv(rows, csv_path)
    plot_study(rows, args.kinds, args.activations, png_path)
    for kind in args.kinds:
        at = {r['activation']: r['rank_ratio'] for r in rows
              if r['kind'] == kind and r['ratio'] == ratios[0]}
        print(f'{kind}: rank ratio at d_in/d_out={ratios[0]}: ' + ', '.join(
            f'{a} {v:.2f}' for a, v in at.items()))
    print(f'wrote {csv_path} and {png_path}')


def plot_study(rows: list[dict], kinds: list[str], activations: list[str],
               path: str) -> None:
    """Average rank ratio against d_in / d_out, one panel per kind."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(kinds), figsize=(4 * len(kinds), 3.6),
                             squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        for activation in activations:
            cell = [r for r in rows
                    if r['kind'] == kind and r['activation'] == activation]
            ax.plot([r['ratio'] for r in cell],
                    [r['rank_ratio'] for r in cell], marker='.',
                    label=activation,
                    ls='--' if activation == 'Identity' else '-')
        ax.set_title(kind)
        ax.set_xlabel('d_in / d_out')
        ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel('rank / d_out (mean)')
    axes[0][-1].legend(fontsize=7, loc='lower right')
    _save_figure(fig, path)


# --------------------------------------------------------- trained models
def build_classifier(config: str, checkpoint: str | None,
                     cfg_options: dict | None) -> tuple[Config, BaseModel]:
    """(cfg, classifier in eval mode) of a config and its checkpoint.

    A toolbox config's ``architecture`` is built; a supernet checkpoint's
    ``architecture.`` keys are loaded into it.
    """
    cfg = load_config(config, cfg_options)
    model_cfg = dict(cfg.model)
    if 'architecture' in model_cfg:
        model_cfg = dict(model_cfg['architecture'])
    if cfg.get('data_preprocessor') is not None:
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        model = MODELS.build(model_cfg)
    if checkpoint:
        state = state_dict_of(read_checkpoint(checkpoint))
        if any(k.startswith('architecture.') for k in state):
            state = {k.removeprefix('architecture.'): v
                     for k, v in state.items()
                     if k.startswith('architecture.')}
        load_state_strictly(model, state, checkpoint)
    return cfg, model.eval()


def input_batches(cfg: Config, model: BaseModel, num_images: int,
                  num_workers: int, bar: ProgressBar
                  ) -> Iterator[torch.Tensor]:
    """Preprocessed batches of the val dataloader, ``num_images`` in all."""
    from mmengine.runner import Runner
    loader_cfg = dict(cfg.val_dataloader, num_workers=num_workers,
                      persistent_workers=num_workers > 0)
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        loader = Runner.build_dataloader(loader_cfg)
    seen = 0
    for data in loader:
        inputs = model.data_preprocessor(data, False)['inputs']
        inputs = inputs[:num_images - seen]
        seen += len(inputs)
        bar.update(len(inputs))
        yield inputs
        if seen >= num_images:
            return


def spectrum_row(label: str, index: int, name: str, spec: Spectrum,
                 rtol: float) -> dict:
    """One CSV row: the rank and normalized nuclear norm of a layer."""
    rank = spec.rank(rtol)
    return dict(model=label, index=index, layer=name, channels=spec.cols,
                rows=spec.rows, rank=rank,
                rank_ratio=round(rank / spec.max_rank, 4),
                nuclear_norm=round(spec.nuclear_norm(), 4),
                nuclear_ratio=round(spec.nuclear_norm() / spec.max_rank, 4))


def run_models(args: argparse.Namespace) -> None:
    if args.num_images < 1:
        raise ConfigError(f'--num-images {args.num_images}: must be >= 1.')
    pairs = [(args.model, args.checkpoint)]
    if args.model2:
        pairs.append((args.model2, args.checkpoint2))
    labels = [osp.splitext(osp.basename(ckpt or cfg))[0]
              for cfg, ckpt in pairs]
    if len(labels) == 2 and labels[0] == labels[1]:
        labels = [f'{labels[0]}_1', f'{labels[1]}_2']

    module_types = ACTIVATION_TYPES if args.features == 'act' \
        else (torch.nn.Conv2d, )
    results: dict[str, dict[str, Spectrum]] = {}
    for label, (config, checkpoint) in zip(labels, pairs):
        cfg, model = build_classifier(config, checkpoint, args.cfg_options)
        model.to(args.device)
        print(f'{label}: measuring on {args.num_images} images')
        bar = ProgressBar(args.num_images)
        results[label] = feature_spectra(
            model, input_batches(cfg, model, args.num_images,
                                 args.num_workers, bar), module_types)
        print()
        if not results[label]:
            raise ConfigError(f'{label}: no {args.features} layer to '
                              'measure.')
        missing = [n for n in args.layers or [] if n not in results[label]]
        if missing:
            raise ConfigError(
                f'--layers {missing[0]}: no such {args.features} layer in '
                f'{label}; its last ones: '
                f'{", ".join(list(results[label])[-3:])}.')

    rows = [spectrum_row(label, i, name, spec, args.rtol)
            for label, spectra in results.items()
            for i, (name, spec) in enumerate(spectra.items())]
    for label in results:
        mine = [r for r in rows if r['model'] == label]
        print(f'{label}: {len(mine)} {args.features} layers, mean rank ratio '
              f'{sum(r["rank_ratio"] for r in mine) / len(mine):.3f}, mean '
              'normalized nuclear norm '
              f'{sum(r["nuclear_ratio"] for r in mine) / len(mine):.3f}')
    paths = [osp.join(args.out_dir, name) for name in (
        'feature_rank.csv', 'feature_rank.png',
        'cumulative_singular_values.png')]
    _write_csv(rows, paths[0])
    plot_feature_rank(rows, args.features, paths[1])
    plot_cumulative(results, args.layers, paths[2])
    print(f'wrote {", ".join(paths)}')


def plot_feature_rank(rows: list[dict], features: str, path: str) -> None:
    """Rank ratio and normalized nuclear norm per layer and model."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    for label in dict.fromkeys(r['model'] for r in rows):
        mine = [r for r in rows if r['model'] == label]
        line, = ax.plot([r['index'] for r in mine],
                        [r['rank_ratio'] for r in mine], '.-',
                        label=f'{label}: rank')
        ax.plot([r['index'] for r in mine],
                [r['nuclear_ratio'] for r in mine], '--',
                color=line.get_color(), label=f'{label}: nuclear norm')
    ax.set_xlabel(f'{features} layer (execution order)')
    ax.set_ylabel('/ min(rows, channels)')
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save_figure(fig, path)


def plot_cumulative(results: dict[str, dict[str, Spectrum]],
                    layers: list[str] | None, path: str) -> None:
    """Cumulative singular values of chosen layers (default: the last)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    for label, spectra in results.items():
        for name in layers or [list(spectra)[-1]]:
            curve = spectra[name].cumulative()
            x = torch.arange(1, len(curve) + 1) / len(curve)
            ax.plot(x.tolist(), curve.tolist(), label=f'{label}: {name}')
    ax.set_xlabel('singular value index / count')
    ax.set_ylabel('cumulative share of singular values')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save_figure(fig, path)


def main() -> None:
    args = parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    if args.model:
        run_models(args)
    else:
        run_study(args)


if __name__ == '__main__':
    run_tool(main)
