"""What the quality benchmarks share: running the tools, retraining and
testing one network (resumable), reading a channel_cfg's FLOPs, and
mean +- std."""
import os.path as osp
import statistics
import subprocess
import sys

from mmchansearch.comparison import ToolRunner, train_and_test


def tool(*args) -> None:
    """Runs ``python <tool> args...`` from the repository root; its
    stderr is shown when it fails."""
    subprocess.run([sys.executable, *map(str, args)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def retrain_and_test(config: str, work_dir: str, options: list[str]
                     ) -> float:
    """Trains ``config`` with ``options`` (resuming a killed run), tests its
    last checkpoint and returns the test top-1; a finished network
    (``work_dir/test.json``) is not run again."""
    return train_and_test(ToolRunner(osp.dirname(work_dir)), config,
                          osp.basename(work_dir), options)


def flops_of(channel_cfg: str) -> float:
    """The FLOPs a channel_cfg's meta records."""
    with open(channel_cfg) as f:
        return float(next(line.split(':')[1] for line in f
                          if line.strip().startswith('flops:')))


def mean_std(values: list[float]) -> str:
    """``mean +- std`` (sample std; 0 for one value), two decimals."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f'{statistics.mean(values):.2f} +- {std:.2f}'
