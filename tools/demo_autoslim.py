"""Runs the whole AutoSlim pipeline on Fashion-MNIST and prints a table.

The stages run the same tools/ commands a user types, through the
toolbox's stage runner (``mmchansearch.tool_runs``): supernet training
(and its test), greedy search, retraining of every searched subnet from
scratch, test, export to a static checkpoint and ONNX (``--retrain
joint``: the searched subnets retrained jointly as one slimmable network,
then the checkpoint split). The uniform-width networks of equal FLOPs go
through the same retraining, test and export, so the table compares
searched and uniform widths under one recipe; the ONNX files of both are
timed in onnxruntime, alternately, in this process. A killed run started
again with the same arguments skips the finished stages; a failing stage
ends it with one ``error:`` line.

Example:
    python tools/demo_autoslim.py --work-dir work_dirs/autoslim_demo
"""
import argparse
import glob
import json
import os.path as osp
import statistics
import time

from mmchansearch.channel_cfg import load_channel_cfg
from mmchansearch.cli import run_tool
from mmchansearch.export import load_static_model, onnx_latency
from mmchansearch.fileio import atomic_write_text
from mmchansearch.tool_runs import ToolRunner

CONFIG_DIR = 'configs/autoslim'
PREFIX = 'autoslim_mbv2_0.5x'
SUFFIX = '1xb128_fashion-mnist-demo.py'
KINDS = ('searched', 'uniform')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/autoslim_demo')
    parser.add_argument('--config-prefix', default=PREFIX,
                        help='configs/autoslim/<prefix>_{supernet,search,'
                        'subnet}_<suffix>')
    parser.add_argument('--config-suffix', default=SUFFIX)
    parser.add_argument('--cfg-options', nargs='*', default=[],
                        help='extra overrides for every train/search/test '
                        'command (key=value)')
    parser.add_argument('--seed', type=int, default=0,
                        help='randomness.seed of every stage')
    parser.add_argument('--retrain', choices=['separate', 'joint'],
                        default='separate',
                        help='retrain every subnet on its own from scratch '
                        '(default), or the searched (and the uniform) '
                        'subnets jointly as one slimmable network, then '
                        'split the checkpoint')
    parser.add_argument('--start', choices=['supernet', 'scratch'],
                        default='supernet',
                        help='retraining starts from the supernet\'s weights '
                        'sliced to each subnet (default; the '
                        '`_subnet-from-supernet_` config) or from scratch '
                        '(the `_subnet_` config); searched and uniform '
                        'subnets always start alike')
    parser.add_argument('--latency-rounds', type=int, default=5,
                        help='onnxruntime timing rounds (searched and '
                        'uniform alternately, median)')
    parser.add_argument('--json-out', help='also write the table rows here')
    return parser.parse_args()


class Demo:
    """The pipeline's stages for one work dir."""

    def __init__(self, args) -> None:
        self.args = args
        self.work_dir = args.work_dir
        self.runner = ToolRunner(args.work_dir, echo=True)

    def config(self, stage: str) -> str:
        return osp.join(CONFIG_DIR, f'{self.args.config_prefix}_{stage}_'
                        f'{self.args.config_suffix}')

    def options(self, *extra: str) -> list[str]:
        return ['--cfg-options', *extra, f'randomness.seed={self.args.seed}',
                *self.args.cfg_options]

    def dir(self, *parts: str) -> str:
        return osp.join(self.work_dir, *parts)

    def run(self, stage: str, *args) -> None:
        print(f'\n=== {stage}: python {" ".join(map(str, args))}',
              flush=True)
        self.runner.run(stage, *args)

    # ------------------------------------------------------------ stages
    def supernet(self) -> tuple[str, dict]:
        """Trains and tests the supernet; its checkpoint and test metrics."""
        work = self.dir('supernet')
        self.run('supernet', 'tools/train.py', self.config('supernet'),
                 '--work-dir', work, '--resume', *self.options())
        checkpoint = last_checkpoint(work)
        metrics = osp.join(work, 'test.json')
        self.run('test_supernet', 'tools/test.py', self.config('supernet'),
                 checkpoint, '--work-dir', work, '--out', metrics,
                 *self.options())
        return checkpoint, read_json(metrics)

    def search(self, checkpoint: str) -> list[str]:
        """The greedy search; its channel_cfgs, widest first."""
        work = self.dir('search')
        self.run('search', 'tools/search.py', self.config('search'),
                 checkpoint, '--work-dir', work, '--resume', *self.options())
        return sorted(glob.glob(osp.join(work, 'subnet_*.yaml')),
                      key=lambda p: -load_channel_cfg(p).meta['flops'])

    def uniform(self, searched: list[str]) -> list[str]:
        """Uniform-width channel_cfgs of the searched subnets' FLOPs."""
        paths = []
        for path in searched:
            label = target_label(path)
            out = self.dir('uniform', f'uniform_flops-{label}.yaml')
            flops = load_channel_cfg(path).meta['flops']
            self.run(f'uniform_{label}', 'tools/get_uniform_cfg.py',
                     self.config('supernet'), '--target', 'flops',
                     repr(flops), '-o', out, *self.options())
            paths.append(out)
        return paths

    def retrain_test_export(self, kind: str, cfg_paths: list[str],
                            supernet_ckpt: str) -> dict[str, dict]:
        """Retraining (each subnet alone, or jointly and split; from the
        supernet's weights or from scratch), test and export of one kind's
        subnets; per channel_cfg: test top-1 and the exported files."""
        if self.args.start == 'supernet':
            subnet_cfg = self.config('subnet-from-supernet')
            start = [f'model.init_from={supernet_ckpt}']
        else:
            subnet_cfg, start = self.config('subnet'), []
        checkpoints = {}
        if self.args.retrain == 'joint':
            work = self.dir(f'retrain_{kind}')
            self.run(f'retrain_{kind}', 'tools/train.py', subnet_cfg,
                     '--work-dir', work, '--resume', *self.options(
                         'model.channel_cfgs=' + ','.join(cfg_paths),
                         *start))
            joint = last_checkpoint(work)
            self.run(f'split_{kind}',
                     'tools/model_converters/split_checkpoint.py',
                     subnet_cfg, joint, '--channel-cfgs', *cfg_paths)
            for path in cfg_paths:
                stem = osp.splitext(osp.basename(path))[0]
                checkpoints[path] = (joint.replace('.pth', f'_{stem}.pth'),
                                     work)
        else:
            for path in cfg_paths:
                label = target_label(path)
                work = self.dir(f'retrain_{kind}_{label}')
                self.run(f'retrain_{kind}_{label}', 'tools/train.py',
                         subnet_cfg, '--work-dir', work, '--resume',
                         *self.options(f'model.channel_cfgs={path}', *start))
                checkpoints[path] = (last_checkpoint(work), work)
        results = {}
        for path in cfg_paths:
            label = target_label(path)
            checkpoint, work = checkpoints[path]
            metrics = osp.join(work, f'test_{kind}_{label}.json')
            self.run(f'test_{kind}_{label}', 'tools/test.py', subnet_cfg,
                     checkpoint, '--work-dir', work, '--out', metrics,
                     *self.options(f'model.channel_cfgs={path}'))
            static = self.dir('export', f'{kind}_flops-{label}.pth')
            onnx = static.replace('.pth', '.onnx')
            self.run(f'export_{kind}_{label}', 'tools/export_subnet.py',
                     subnet_cfg, '--checkpoint', checkpoint, '-o', static,
                     '--onnx', onnx, *self.options())
            results[path] = dict(
                top1=read_json(metrics)['accuracy/top1'], static=static,
                onnx=onnx, params=exported_params(subnet_cfg, static))
        return results

    def plot(self, searched: list[str], uniform: list[str]) -> str:
        out = self.dir('channels.png')
        self.run('plot', 'tools/plot_channels.py', self.config('supernet'),
                 *searched, *uniform, '-o', out, *self.options())
        return out


def last_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def target_label(path: str) -> str:
    """'1M' for '.../subnet_flops-1M.yaml'."""
    return osp.splitext(osp.basename(path))[0].rsplit('-', 1)[1]


def exported_params(config: str, static_checkpoint: str) -> int:
    """Parameters of the exported static model, counted on the model
    rebuilt from its file (not taken from the channel_cfg)."""
    model = load_static_model(config, static_checkpoint)
    return sum(p.numel() for p in model.parameters())


def onnx_latencies(pairs: list[tuple[str, str]], input_shape, rounds: int
                   ) -> list[tuple[float, float]]:
    """Median onnxruntime latency (ms, batch 1) of each (searched, uniform)
    ONNX pair, the two timed alternately round after round."""
    times = [([], []) for _ in pairs]
    for _ in range(rounds):
        for (searched, uniform), (s_times, u_times) in zip(pairs, times):
            s_times.append(onnx_latency(searched, input_shape))
            u_times.append(onnx_latency(uniform, input_shape))
    return [(statistics.median(s), statistics.median(u)) for s, u in times]


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    demo = Demo(args)
    supernet_ckpt, supernet_metrics = demo.supernet()
    searched = demo.search(supernet_ckpt)
    uniform = demo.uniform(searched)
    results = {kind: demo.retrain_test_export(kind, paths, supernet_ckpt)
               for kind, paths in zip(KINDS, (searched, uniform))}
    plot = demo.plot(searched, uniform)
    input_shape = load_channel_cfg(searched[0]).meta['input_shape']
    latencies = onnx_latencies(
        [(results['searched'][s]['onnx'], results['uniform'][u]['onnx'])
         for s, u in zip(searched, uniform)], input_shape,
        args.latency_rounds)
    rows = []
    for (s_path, u_path), (s_ms, u_ms) in zip(zip(searched, uniform),
                                              latencies):
        row = dict(target=target_label(s_path))
        for kind, path, ms in (('searched', s_path, s_ms),
                               ('uniform', u_path, u_ms)):
            result = results[kind][path]
            row.update({f'{kind}_flops': load_channel_cfg(path).meta['flops'],
                        f'{kind}_params': result['params'],
                        f'{kind}_top1': result['top1'],
                        f'{kind}_onnx_ms': ms,
                        f'{kind}_onnx': result['onnx']})
        rows.append(row)
    print_summary(supernet_metrics, rows, demo, plot)
    if args.json_out:
        atomic_write_text(args.json_out, json.dumps(
            dict(supernet=supernet_metrics, rows=rows), indent=1))
    print(f'\nwhole pipeline: {time.perf_counter() - start:.0f} s '
          f'(stage times in {demo.runner.path}); outputs in {args.work_dir}')


def print_summary(supernet_metrics: dict, rows: list[dict], demo: Demo,
                  plot: str) -> None:
    top1 = {k.split('/')[0]: v for k, v in supernet_metrics.items()
            if k.endswith('accuracy/top1')}
    print('\nsupernet test top-1: ' + ', '.join(
        f'{name} width {value:.2f}%' for name, value in top1.items()))
    print('\n| target | searched FLOPs | params | top-1 | ONNX ms '
          '| uniform FLOPs | params | top-1 | ONNX ms | searched - uniform |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for r in rows:
        print(f'| {r["target"]} '
              + ''.join(f'| {r[f"{k}_flops"] / 1e6:.3f}M '
                        f'| {r[f"{k}_params"] / 1e6:.3f}M '
                        f'| {r[f"{k}_top1"]:.2f} '
                        f'| {r[f"{k}_onnx_ms"]:.3f} ' for k in KINDS)
              + f'| {r["searched_top1"] - r["uniform_top1"]:+.2f} |')
    start = ('fine-tuning from the supernet\'s weights'
             if demo.args.start == 'supernet' else 'retraining from scratch')
    print(f'\ntop-1: test images after {start} (same start and recipe '
          'for both); params: counted on the exported static model; ONNX '
          'ms: onnxruntime, batch 1, CPU, median of alternating rounds.')
    print(f'ONNX files: {demo.dir("export")}; widths per group: {plot}; '
          f'search trajectory: {demo.dir("search", "search_trajectory.png")}')


if __name__ == '__main__':
    run_tool(main)
