"""The FBNet DNAS search loop: train the stochastic supernet, then write
the derived architecture and samples from the learned distributions."""
from __future__ import annotations

import csv
import io
import math
import os
import random

from ..channel_cfg import save_channel_cfg
from ..fileio import atomic_write_text
from ..models.algorithms import DNAS
from ..mutator import ChannelMutator
from ..registry import LOOPS
from ..visualization import plot_block_distributions
from .dmasking_search import DifferentiableSearchLoop


@LOOPS.register_module()
class DNASSearchLoop(DifferentiableSearchLoop):
    """The FBNet DNAS search loop (see :class:`DifferentiableSearchLoop`).

    ``derived.yaml`` holds the argmax block per layer under ``blocks:``,
    the derived network's channel groups under ``channels:``, FLOPs,
    params and LUT latency in meta; ``samples/sample_<k>.yaml`` and
    ``samples.csv`` are architectures drawn from P_theta with their costs
    and log-probability; ``block_distributions.png`` shows P_theta.

    Args:
        num_samples: architectures to draw from P_theta.
        seed: seed of the draws.
        Others as :class:`DifferentiableSearchLoop`.
    """
    algorithm_type = DNAS

    def __init__(self, runner, dataloader=None,
                 checkpoint: str | None = None, resume: bool = False,
                 model_name: str = '', num_samples: int = 5,
                 seed: int = 0, force: bool = False) -> None:
        super().__init__(runner, dataloader, checkpoint, resume, model_name,
                         force)
        self.num_samples, self.seed = num_samples, seed

    def write_results(self, work_dir: str, path: str) -> str:
        algorithm = self.algorithm
        derived = algorithm.derived_blocks()
        self._write_config(derived, path, 'DNAS, argmax of P_theta')
        self._write_samples(os.path.join(work_dir, 'samples'))
        plot_block_distributions(
            algorithm.probabilities(), algorithm.options,
            os.path.join(work_dir, 'block_distributions.png'))
        return _describe(algorithm.cost_of(derived))

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
