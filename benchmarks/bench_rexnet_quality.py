"""ReXNet: the best linear channel configuration vs a stage-wise one.

Han et al. find that good networks grow their channels linearly with the
block index instead of MobileNetV2's stage-wise steps. This compares the two
at equal FLOPs on Fashion-MNIST, same depth and training recipe:

1. the channel-parameterization search (tools/search.py with the
   Fashion-MNIST config, or an existing result dir via --search-dir); the
   linear network is its best-ranked candidate whose curve is linear or
   piecewise linear (``kind`` in candidates.csv; the stage-wise samples are
   skipped);
2. the stage-wise network of the same depth: MobileNetV2's widths of the
   six corresponding stages (16, 24, 32, 64, 96, 160), constant within a
   stage, times one scale, rounded to the search's divisor; the scale is
   chosen so that its FLOPs (the search's own analytic ReXNetBudget)
   equal the linear network's; if no scale comes within --tolerance,
   single stages may round the other way;
3. both retrained from scratch per seed (tools/train.py with
   configs/rexnet/rexnet_retrain_1xb64_fashion-mnist.py and the widths as
   a channel_cfg, ``model.channel_cfgs``) and tested on the 10000 test images
   (tools/test.py);
4. a Markdown table: top-1 mean +- std and the paired linear - stage-wise
   gap.

Every finished piece is kept in --work-dir and skipped on a re-run.

--search-config/--retrain-config pick the search space: by default the
8-block ReXNet of configs/rexnet/rexnet_search_1xb64_fashion-mnist.py;
the paper's setting (plain inverted bottlenecks, stem 16) is
rexnet_search_plain-ib-stem16_1xb64_fashion-mnist.py with its retrain
config. --search-options change the search, e.g.
``search_loop.max_breakpoints=0`` (straight lines only) or a longer
candidate schedule.

Example (a CPU-sized recipe; the defaults):
    OMP_NUM_THREADS=1 python benchmarks/bench_rexnet_quality.py \
        --seeds 0 1 2 --work-dir work_dirs/rexnet_quality
"""
import argparse
import csv
import itertools
import json
import math
import os
import os.path as osp
import sys
import time

from quality_runs import mean_std, retrain_and_test

from mmchansearch.channel_cfg import ChannelConfig, save_channel_cfg
from mmchansearch.comparison import ToolRunner
from mmchansearch.models.backbones.rexnet import block_names

CONFIGS = 'configs/rexnet/'
SEARCH = CONFIGS + 'rexnet_search_1xb64_fashion-mnist.py'
RETRAIN = CONFIGS + 'rexnet_retrain_1xb64_fashion-mnist.py'
# output channels of MobileNetV2's first six stages, whose strides
# (1, 2, 2, 2, 1, 2) are ReXNet's six stages'
MBV2_STAGE_WIDTHS = (16, 24, 32, 64, 96, 160)
NETWORKS = ('linear', 'stagewise')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--work-dir', default='work_dirs/rexnet_quality')
    parser.add_argument('--search-config', default=SEARCH,
                        help='the search config (its model is the search '
                        'space)')
    parser.add_argument('--retrain-config', default=RETRAIN,
                        help='the retraining config of that search space')
    parser.add_argument('--search-dir',
                        help='an existing search result dir (with '
                        'candidates.csv); default: search into '
                        'WORK_DIR/search')
    parser.add_argument('--search-options', nargs='*', default=[],
                        help='extra --cfg-options of the search, e.g. '
                        'search_loop.num_candidates=6')
    parser.add_argument('--kinds', nargs='+',
                        default=['linear', 'piecewise'],
                        help='candidate kinds that count as linear')
    parser.add_argument('--tolerance', type=float, default=0.01,
                        help='relative FLOPs difference allowed before '
                        'stages may round the other way')
    parser.add_argument('--train-images', type=int, default=10000)
    parser.add_argument('--epochs', type=int, default=6)
    return parser.parse_args()


# ------------------------------------------------------------ networks
def search(args) -> str:
    """The search result dir, searching first unless given or done."""
    search_dir = args.search_dir or osp.join(args.work_dir, 'search')
    if not osp.isfile(osp.join(search_dir, 'candidates.csv')):
        if args.search_dir:
            sys.exit(f'{search_dir}/candidates.csv: no such file')
        ToolRunner(args.work_dir).run(
            'search', 'tools/search.py', args.search_config, '--work-dir',
            search_dir,
            '--resume', *(['--cfg-options', *args.search_options]
                          if args.search_options else []))
    return search_dir


def best_linear(search_dir: str, kinds) -> dict:
    """The best-ranked candidate of an accepted kind."""
    with open(osp.join(search_dir, 'candidates.csv')) as f:
        rows = list(csv.DictReader(f))
    for row in rows:  # ranked, best first
        if row['kind'] in kinds:
            return dict(
                rank=int(row['rank']), count=len(rows), kind=row['kind'],
                index=int(row['index']), a=float(row['a']),
                b=float(row['b']),
                knots=[[float(v) for v in k.split(':')]
                       for k in row['knots'].split()],
                channels=[int(c) for c in row['channels'].split()],
                flops=float(row['flops']), params=float(row['params']),
                search_mean=float(row['accuracy/top1_mean']),
                search_std=float(row['accuracy/top1_std']))
    sys.exit(f'no candidate of kind {kinds} in {search_dir}/candidates.csv')


def stage_widths(scale: float, divisor: int, rounding) -> list[int]:
    """MobileNetV2's stage widths times ``scale``, each rounded by its
    function of ``rounding`` to a multiple of ``divisor``, never below
    one divisor or the previous stage."""
    widths, last = [], 0
    for ref, rnd in zip(MBV2_STAGE_WIDTHS, rounding):
        width = max(divisor, int(rnd(scale * ref / divisor)) * divisor)
        last = max(last, width)
        widths.append(last)
    return widths


def match_stagewise(budget, target: float, stage_blocks, divisor: int,
                    tolerance: float) -> dict:
    """The stage-wise network whose FLOPs are closest to ``target``."""
    nearest = [round] * len(MBV2_STAGE_WIDTHS)
    tried = {}  # stage widths -> (scale, rounding)
    for step in range(20, 1601):  # scales 0.05 to 4 in steps of 1/400
        scale = step / 400
        tried.setdefault(tuple(stage_widths(scale, divisor, nearest)),
                         (scale, 'nearest'))

    def gap(widths) -> float:
        blocks = [w for w, n in zip(widths, stage_blocks) for _ in range(n)]
        return budget.estimate(blocks)['flops'] / target - 1

    best = min(tried, key=lambda w: abs(gap(w)))
    if abs(gap(best)) > tolerance:
        # single stages round down or up instead, around the 5 best scales
        for widths in sorted(tried, key=lambda w: abs(gap(w)))[:5]:
            scale = tried[widths][0]
            for rounding in itertools.product((math.floor, math.ceil),
                                              repeat=len(widths)):
                candidate = tuple(stage_widths(scale, divisor, rounding))
                tried.setdefault(candidate, (scale, 'per stage'))
        best = min(tried, key=lambda w: (abs(gap(w)), w))
    scale, rounding = tried[best]
    channels = [w for w, n in zip(best, stage_blocks) for _ in range(n)]
    return dict(kind='stagewise', scale=scale, rounding=rounding,
                stage_widths=list(best), channels=channels,
                **budget.estimate(channels))


def write_network(path: str, net: dict, source: str, model: str) -> None:
    """The network as a channel_cfg: its block widths under ``blocks:``
    (what the retrain config takes as ``model.channel_cfgs``)."""
    names = block_names(net['stage_blocks'])
    save_channel_cfg(ChannelConfig({}, dict(
        model=model, input_shape=[3, 32, 32], flops=net['flops'],
        params=net['params'], source=source), {
            f'backbone.{n}': int(w) for n, w in zip(names, net['channels'])
        }), path)


def networks(args, search_dir: str) -> dict:
    """The two networks, written to WORK_DIR/{linear,stagewise}.yaml."""
    out = osp.join(args.work_dir, 'networks.json')
    if osp.isfile(out):
        with open(out) as f:
            return json.load(f)
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmchansearch.models  # noqa: F401  (registers ReXNet)
    from mmchansearch.engine.rexnet_search import ReXNetBudget
    cfg = Config.fromfile(args.search_config)
    init_default_scope(cfg.default_scope)
    stage_blocks = list(cfg.model.backbone.stage_blocks)
    if len(stage_blocks) != len(MBV2_STAGE_WIDTHS):
        sys.exit(f'{args.search_config}: {len(stage_blocks)} stages; the '
                 f'stage-wise network needs {len(MBV2_STAGE_WIDTHS)} '
                 '(MobileNetV2\'s first six)')
    loop = cfg.search_loop
    budget = ReXNetBudget(cfg.model.to_dict(), loop.input_shape)

    linear = best_linear(search_dir, args.kinds)
    usage = budget.estimate(linear['channels'])
    if (usage['flops'], usage['params']) != (linear['flops'],
                                             linear['params']):
        sys.exit(f'{search_dir} was searched with another model: '
                 f'{usage} != the csv\'s FLOPs/params')
    stagewise = match_stagewise(budget, linear['flops'], stage_blocks,
                                loop.divisor, args.tolerance)
    for net in (linear, stagewise):
        net['stage_blocks'] = stage_blocks
    write_network(
        osp.join(args.work_dir, 'linear.yaml'), linear,
        f'{search_dir}/candidates.csv rank {linear["rank"]} of '
        f'{linear["count"]} (the best of kind {linear["kind"]}), '
        f'candidate {linear["index"]}', args.retrain_config)
    write_network(
        osp.join(args.work_dir, 'stagewise.yaml'), stagewise,
        f'MobileNetV2 stage widths {list(MBV2_STAGE_WIDTHS)} x '
        f'{stagewise["scale"]:g}, rounded ({stagewise["rounding"]}) to '
        f'multiples of {loop.divisor}, at the FLOPs of linear.yaml',
        args.retrain_config)
    result = dict(linear=linear, stagewise=stagewise)
    with open(out, 'w') as f:
        json.dump(result, f, indent=1)
    return result


# ------------------------------------------------------------ retraining
def retrain(args, seed: int, name: str, net: dict) -> float:
    """Trains and tests one network with one seed; returns the top-1."""
    epochs = args.epochs
    return retrain_and_test(args.retrain_config, osp.join(
        args.work_dir, f'seed{seed}', name), [
        f'randomness.seed={seed}',
        f'train_dataloader.dataset.stop={args.train_images}',
        f'max_epochs={epochs}', f'train_cfg.max_epochs={epochs}',
        f'train_cfg.val_interval={epochs}',
        f'param_scheduler.end={epochs}',
        'model.channel_cfgs=' + osp.join(args.work_dir, f'{name}.yaml')])


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    os.makedirs(args.work_dir, exist_ok=True)
    print(f'load average at the start: {os.getloadavg()[0]:.2f}, '
          f'OMP_NUM_THREADS={os.environ.get("OMP_NUM_THREADS", "unset")}',
          flush=True)
    search_dir = search(args)
    nets = networks(args, search_dir)
    top1 = {name: [] for name in NETWORKS}
    for seed in args.seeds:
        seed_start = time.perf_counter()
        for name in NETWORKS:
            top1[name].append(retrain(args, seed, name, nets[name]))
            print(f'seed {seed} {name}: top-1 {top1[name][-1]:.2f}',
                  flush=True)
        print(f'seed {seed}: {time.perf_counter() - seed_start:.0f} s in '
              'this run (0 if done before)', flush=True)
    linear = nets['linear']
    print(f'\nsearch config {args.search_config}, options '
          f'{args.search_options}; retrain config {args.retrain_config}')
    print(f'search: {search_dir}; linear = rank {linear["rank"]} of '
          f'{linear["count"]} (kind {linear["kind"]}, held-out top-1 '
          f'{linear["search_mean"]:.2f} +- {linear["search_std"]:.2f} in '
          'the search)')
    print(f'seeds {args.seeds}: retrain {args.epochs} epochs on '
          f'{args.train_images} training images, test on the 10000 test '
          'images\n')
    print('| network | block widths | MFLOPs | Mparams | top-1 (test) |')
    print('|---|---|---|---|---|')
    for name in NETWORKS:
        net = nets[name]
        print(f'| {name} | {" ".join(map(str, net["channels"]))} | '
              f'{net["flops"] / 1e6:.3f} | {net["params"] / 1e6:.3f} | '
              f'{mean_std(top1[name])} |')
    gaps = [a - b for a, b in zip(top1['linear'], top1['stagewise'])]
    print(f'\nlinear - stagewise: {mean_std(gaps)} (per seed: '
          f'{", ".join(f"{g:+.2f}" for g in gaps)}); FLOPs '
          f'{nets["stagewise"]["flops"] / linear["flops"] - 1:+.2%}')
    print(f'load average at the end: {os.getloadavg()[0]:.2f}; this run '
          f'took {time.perf_counter() - start:.0f} s (the stages.json files '
          'have every piece, also of earlier runs)')


if __name__ == '__main__':
    main()
