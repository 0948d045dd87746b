"""The DMaskingNAS (FBNetV2) search loop: trains with
:class:`~.differentiable_search.DifferentiableTrainLoop`, then writes the
derived channel_cfg, the learned distributions and plots of their
evolution."""
from __future__ import annotations

import json
import os

from ..channel_cfg import save_channel_cfg
from ..models.algorithms import DMaskingNAS
from ..registry import LOOPS
from ..visualization import (
    plot_arch_distributions,
    plot_block_distributions,
)
from .differentiable_search import HISTORY_FILE, DifferentiableSearchLoop


@LOOPS.register_module()
class DMaskingNASSearchLoop(DifferentiableSearchLoop):
    """The DMaskingNAS search loop (see :class:`DifferentiableSearchLoop`).

    ``derived.yaml`` holds the argmax candidate per group and, when it is
    searched, the argmax ``resolution`` (FLOPs/params at that resolution in
    meta); ``distributions.json`` also has the resolution's under
    ``resolution``; ``arch_distributions.png`` plots the expected widths
    per epoch from ``arch_history.json``. In an FBNetV2 space
    ``derived.yaml`` also has the argmax kernel of every layer under
    ``blocks:`` and ``block_distributions.png`` shows their probabilities.
    """
    algorithm_type = DMaskingNAS

    def write_results(self, work_dir: str, path: str) -> str:
        algorithm = self.algorithm
        extra = {} if algorithm.target is None else dict(
            target=algorithm.target)
        derived = algorithm.derived_channel_cfg(self.model_name, **extra)
        save_channel_cfg(derived, path, algorithm.mutator.max_widths)
        with open(os.path.join(work_dir, HISTORY_FILE)) as f:
            history = json.load(f)
        widths = algorithm.channel_options
        plot_arch_distributions(
            [dict(h, probabilities={g: p for g, p in h['probabilities'].items()
                                    if g in widths}) for h in history],
            widths, os.path.join(work_dir, 'arch_distributions.png'))
        if algorithm.block_layers:
            probabilities = algorithm.probabilities()
            plot_block_distributions(
                {n: probabilities[n] for n in algorithm.block_layers},
                algorithm.options,
                os.path.join(work_dir, 'block_distributions.png'))
        at = '' if derived.resolution is None else \
            f' at {derived.resolution}x{derived.resolution}'
        return (f'{derived.meta["flops"] / 1e6:.3f}M FLOPs{at}, '
                f'{derived.meta["params"] / 1e6:.3f}M params')

    def distributions(self) -> dict:
        result = super().distributions()
        algorithm = self.algorithm
        if algorithm.resolutions:
            result['resolution'] = dict(
                candidates=algorithm.resolutions,
                probabilities=algorithm.resolution_probabilities())
        return result
