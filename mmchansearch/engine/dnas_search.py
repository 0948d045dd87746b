"""The FBNet DNAS search loop: train the stochastic supernet, then write
the derived architecture and samples from the learned distributions."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import random

from mmengine import dist
from mmengine.logging import MMLogger
from mmengine.runner import BaseLoop

from ..channel_cfg import save_channel_cfg
from ..cli import unwrap
from ..errors import ConfigError
from ..fileio import atomic_write_text
from ..mutator import ChannelMutator
from ..registry import LOOPS
from ..visualization import plot_block_distributions


@LOOPS.register_module()
class DNASSearchLoop(BaseLoop):
    """Runs the DNAS training (``train_cfg``, a ``DMaskingTrainLoop``),
    then writes what it found.

    Writes ``derived.yaml`` (argmax block per layer under ``blocks:``,
    the derived network's channel groups under ``channels:``, FLOPs,
    params and LUT latency in meta), ``samples/sample_<k>.yaml`` and
    ``samples.csv`` (architectures drawn from P_theta with their costs and
    log-probability), ``distributions.json`` and
    ``block_distributions.png``. ``tools/search.py --resume`` resumes the
    training from its last checkpoint.

    Args:
        runner: the Runner of the search config (model ``DNAS``).
        dataloader: unused (the train loop holds the data); may be None.
        checkpoint: refused (pretrained weights go in ``load_from``).
        resume: see ``runner``.
        model_name: written into the results' meta.
        num_samples: architectures to draw from P_theta.
        seed: seed of the draws.
    """

    def __init__(self, runner, dataloader=None,
                 checkpoint: str | None = None, resume: bool = False,
                 model_name: str = '', num_samples: int = 5,
                 seed: int = 0) -> None:
        super().__init__(runner, dataloader)
        self.algorithm = unwrap(runner.model)
        if not hasattr(self.algorithm, 'derived_blocks'):
            raise ConfigError('DNASSearchLoop needs model type DNAS, got '
                              f'{type(self.algorithm).__name__}.')
        if checkpoint:
            raise ConfigError(
                'DNAS trains its own supernet and takes no checkpoint; for '
                'pretrained weights pass --cfg-options load_from=CKPT.')
        self.model_name, self.num_samples, self.seed = (
            model_name, num_samples, seed)
        self.logger = MMLogger.get_current_instance()

    def run(self) -> str:
        """Trains, then writes the results; returns the derived YAML."""
        self.runner.train()
        algorithm, work_dir = self.algorithm, self.runner.work_dir
        derived = algorithm.derived_blocks()
        path = os.path.join(work_dir, 'derived.yaml')
        if dist.is_main_process():
            self._write_config(derived, path, 'DNAS, argmax of P_theta')
            self._write_samples(os.path.join(work_dir, 'samples'))
            probabilities = algorithm.probabilities()
            atomic_write_text(
                os.path.join(work_dir, 'distributions.json'),
                json.dumps({n: dict(candidates=algorithm.options[n],
                                    probabilities=p)
                            for n, p in probabilities.items()}, indent=1))
            plot_block_distributions(
                probabilities, algorithm.options,
                os.path.join(work_dir, 'block_distributions.png'))
        costs = algorithm.cost_of(derived)
        self.logger.info(f'derived: {path}: ' + _describe(costs))
        return path

    def _write_config(self, blocks: dict[str, str], path: str,
                      source: str, **extra) -> None:
        """``blocks`` as a channel_cfg; its channels are the groups of the
        derived static network at their full widths."""
        algorithm = self.algorithm
        config = algorithm.blocks_config(blocks, self.model_name, source,
                                         **extra)
        mutator = ChannelMutator(input_shape=algorithm.input_shape)
        mutator.prepare(algorithm.export_static(blocks))
        config.channels = dict(mutator.max_widths)
        save_channel_cfg(config, path, mutator.max_widths)

    def _write_samples(self, folder: str) -> None:
        algorithm, rng = self.algorithm, random.Random(self.seed)
        os.makedirs(folder, exist_ok=True)
        probabilities = algorithm.probabilities()
        rows = []
        for k in range(self.num_samples):
            blocks = algorithm.sample_blocks(rng)
            log_prob = sum(math.log(probabilities[n][
                algorithm.options[n].index(blocks[n])])
                for n in probabilities)
            self._write_config(blocks, os.path.join(
                folder, f'sample_{k}.yaml'), 'DNAS, a sample of P_theta',
                log_prob=log_prob)
            rows.append(dict(sample=k, log_prob=log_prob,
                             **algorithm.cost_of(blocks)))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(rows[0]) if rows
                                else ['sample'])
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(os.path.join(os.path.dirname(folder),
                                       'samples.csv'), text.getvalue())


def _describe(costs: dict[str, float]) -> str:
    text = (f'{costs["flops"] / 1e6:.3f}M FLOPs, '
            f'{costs["params"] / 1e6:.3f}M params')
    if 'latency' in costs:
        text += f', {costs["latency"]:.3f} ms (LUT)'
    return text
