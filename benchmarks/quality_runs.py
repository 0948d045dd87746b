"""What the quality benchmarks share: running the tools, retraining and
testing one network (resumable), keeping each seed's result, reading a
channel_cfg's FLOPs, mean +- std and the table of networks."""
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence

from mmchansearch.comparison import ToolRunner, train_and_test
from mmchansearch.fileio import atomic_write_text


def tool(*args) -> None:
    """Runs ``python <tool> args...`` from the repository root; its
    stderr is shown when it fails."""
    done = subprocess.run([sys.executable, *map(str, args)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    if done.returncode:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f'error: {args[0]} failed (exit status '
                         f'{done.returncode}); its stderr ends above')


def retrain_and_test(config: str, work_dir: str, options: list[str]
                     ) -> float:
    """Trains ``config`` with ``options`` (resuming a killed run), tests its
    last checkpoint and returns the test top-1; a finished network
    (``work_dir/test.json``) is not run again."""
    return train_and_test(ToolRunner(osp.dirname(work_dir)), config,
                          osp.basename(work_dir), options)


# The main job's fine-tuning of a subnet from its supernet's weights.
FROM_SUPERNET = ('configs/autoslim/autoslim_mbv2_0.5x_subnet-from-supernet_'
                 '1xb128_fashion-mnist-demo.py')


def finetune_from_supernet(runner: ToolRunner, name: str, channel_cfg: str,
                           supernet: str, seed: int) -> float:
    """Fine-tunes the subnet ``channel_cfg`` from ``supernet`` with the
    main job's recipe and training seed ``seed`` (run ``name`` of
    ``runner``'s work dir, resumable) and returns its test top-1."""
    return train_and_test(runner, FROM_SUPERNET, name,
                          [f'model.channel_cfgs={channel_cfg}',
                           f'model.init_from={supernet}',
                           f'randomness.seed={seed}'])


def seed_result(work_dir: str, seed: int, run: Callable[[], dict]) -> dict:
    """One seed's result: ``run()``, kept in ``work_dir/seed<seed>.json``
    (written atomically: a killed run leaves no half file); a seed
    finished before is read back instead of run again."""
    path = osp.join(work_dir, f'seed{seed}.json')
    if osp.isfile(path):
        with open(path) as f:
            return json.load(f)
    result = run()
    os.makedirs(work_dir, exist_ok=True)
    atomic_write_text(path, json.dumps(result))
    return result


def flops_of(channel_cfg: str) -> float:
    """The FLOPs a channel_cfg's meta records."""
    with open(channel_cfg) as f:
        return float(next(line.split(':')[1] for line in f
                          if line.strip().startswith('flops:')))


def mean_std(values: list[float]) -> str:
    """``mean +- std`` (sample std; 0 for one value), two decimals."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f'{statistics.mean(values):.2f} +- {std:.2f}'


def print_table(runs: list[dict], networks: Sequence[str],
                flops_column: str = 'MFLOPs', flops_digits: int = 2) -> None:
    """Prints a Markdown table with a row per network: its MFLOPs (the
    mean over the seeds) and its test top-1 mean +- std.

    Args:
        runs: one result per seed: network name -> ``dict(flops, top1)``.
        networks: the names of the rows, in order.
        flops_column: the header of the MFLOPs column.
        flops_digits: decimals of the MFLOPs.
    """
    print(f'| network | {flops_column} | top-1 (test) |')
    print('|---|---|---|')
    for name in networks:
        flops = statistics.mean(r[name]['flops'] for r in runs)
        print(f'| {name} | {flops / 1e6:.{flops_digits}f} | '
              f'{mean_std([r[name]["top1"] for r in runs])} |')
