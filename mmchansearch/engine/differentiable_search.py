"""What the differentiable searches (DMaskingNAS, DNAS) share in the engine.

:class:`DifferentiableTrainLoop` is an epoch loop that, after
``warmup_epochs`` of weight steps only, follows every weight step on a
training batch with an architecture step on a batch of a second split, and
anneals the Gumbel temperature every epoch. :class:`DifferentiableSearchLoop`,
the base of :class:`~.dmasking_search.DMaskingNASSearchLoop` and
:class:`~.dnas_search.DNASSearchLoop` (run by ``tools/search.py``), trains
with it and writes what the search found.
"""
from __future__ import annotations

import json
import os
from abc import abstractmethod

from mmengine import dist
from mmengine.logging import MMLogger
from mmengine.runner import BaseLoop, EpochBasedTrainLoop

from ..distributed import check_finite, run_on_main, unwrap
from ..errors import ConfigError
from ..fileio import atomic_write_text
from ..registry import LOOPS
from .search_state import check_fresh_start

HISTORY_FILE = 'arch_history.json'
DIVERGED = ('The search diverged: lower the learning rate of the weights '
            '(optim_wrapper.architecture.optimizer.lr) or of the '
            'architecture (optim_wrapper.arch_params.optimizer.lr), or check '
            'the weights of load_from')


@LOOPS.register_module()
class DifferentiableTrainLoop(EpochBasedTrainLoop):
    """Alternating weight and architecture steps (DMaskingNAS, DNAS).

    Args:
        runner: the Runner.
        dataloader: the weights' split of the training data.
        max_epochs: epochs in all.
        arch_dataloader: the architecture's split, read from its start
            every epoch, reshuffled by the epoch as the weights' split is
            (cycled when an epoch takes more of its batches), so a
            training resumed at an epoch reads the batches an uninterrupted
            one would have.
        warmup_epochs: first epochs with weight steps only.
        tau: Gumbel temperature of epoch 0.
        tau_decay: the temperature is multiplied by it every epoch
            (FBNet: 5.0, x0.956).
        val_begin: first epoch that validates.
        val_interval: validation every this many epochs.
    """

    def __init__(self, runner, dataloader, max_epochs: int,
                 arch_dataloader: dict, warmup_epochs: int = 0,
                 tau: float = 5.0, tau_decay: float = 0.956,
                 val_begin: int = 1, val_interval: int = 1) -> None:
        super().__init__(runner, dataloader, max_epochs, val_begin,
                         val_interval)
        self.arch_dataloader = runner.build_dataloader(arch_dataloader)
        self._arch_batches = None
        self.warmup_epochs, self.tau, self.tau_decay = (
            warmup_epochs, tau, tau_decay)

    def _next_arch_batch(self) -> dict:
        if self._arch_batches is None:
            self._arch_batches = iter(self.arch_dataloader)
        try:
            return next(self._arch_batches)
        except StopIteration:
            self._arch_batches = iter(self.arch_dataloader)
            return next(self._arch_batches)

    def run_epoch(self) -> None:
        """One epoch at this epoch's temperature; records the alphas
        before the epoch's checkpoint is saved (``after_train_epoch``), so
        no checkpoint exists without its epoch's record."""
        runner, epoch = self.runner, self._epoch
        algorithm = unwrap(runner.model)
        algorithm.tau = self.tau * self.tau_decay ** epoch
        sampler = getattr(self.arch_dataloader, 'sampler', None)
        if hasattr(sampler, 'set_epoch'):
            sampler.set_epoch(epoch)
        self._arch_batches = None  # the split is read from its start
        runner.call_hook('before_train_epoch')
        runner.model.train()
        for idx, data_batch in enumerate(self.dataloader):
            self.run_iter(idx, data_batch)
        _record_distributions(runner.work_dir, algorithm, epoch)
        runner.call_hook('after_train_epoch')
        self._epoch += 1

    def run_iter(self, idx, data_batch) -> None:
        """A weight step, then (after warm-up) an architecture step."""
        runner = self.runner
        runner.call_hook('before_train_iter', batch_idx=idx,
                         data_batch=data_batch)
        outputs = runner.model.train_step(
            data_batch, optim_wrapper=runner.optim_wrapper)
        if self._epoch >= self.warmup_epochs:
            outputs.update(unwrap(runner.model).arch_step(
                self._next_arch_batch(), runner.optim_wrapper))
        check_finite({**outputs, **_named_arch_params(unwrap(runner.model))},
                     f'search training, epoch {self._epoch + 1} iteration '
                     f'{idx + 1}', DIVERGED)
        runner.call_hook('after_train_iter', batch_idx=idx,
                         data_batch=data_batch, outputs=outputs)
        self._iter += 1


def _named_arch_params(algorithm) -> dict:
    """A differentiable search's architecture parameters, named after the
    decision each weighs (DMaskingNAS's last may be the resolution's)."""
    names = [*algorithm.searched, 'resolution']
    return {f'architecture parameters of {name}': alpha.detach()
            for name, alpha in zip(names, algorithm.arch_params)}


def _record_distributions(work_dir: str, algorithm, epoch: int) -> None:
    """Appends the epoch's candidate probabilities to the history file
    (entries of later epochs, left by a killed run, are dropped)."""
    if not dist.is_main_process():
        return
    path = os.path.join(work_dir, HISTORY_FILE)
    history = []
    if os.path.isfile(path):
        with open(path) as f:
            history = [h for h in json.load(f) if h['epoch'] < epoch]
    entry = dict(epoch=epoch, tau=algorithm.tau,
                 probabilities=algorithm.probabilities())
    resolution = getattr(algorithm, 'resolution_probabilities', list)()
    if resolution:
        entry['resolution_probabilities'] = resolution
    history.append(entry)
    atomic_write_text(path, json.dumps(history))


class DifferentiableSearchLoop(BaseLoop):
    """Runs a differentiable search's training (``train_cfg``, a
    :class:`DifferentiableTrainLoop`), then writes what it found: the derived
    network as ``derived.yaml``, the learned distributions as
    ``distributions.json`` and what :meth:`write_results` adds. Resume
    with ``tools/search.py --resume`` (mmengine's checkpoint resume).

    Args:
        runner: the Runner of the search config; ``--resume`` reaches its
            training through the config.
        dataloader: unused (the train loop holds the data); may be None.
        checkpoint: refused: the search trains its own supernet
            (pretrained weights go in the config's ``load_from``).
        resume: see ``runner``.
        force: start over although the work dir holds an earlier search's
            training checkpoints.
        model_name: written into the results' meta.
    """
    algorithm_type: type

    def __init__(self, runner, dataloader=None,
                 checkpoint: str | None = None, resume: bool = False,
                 model_name: str = '', force: bool = False) -> None:
        super().__init__(runner, dataloader)
        self.algorithm = unwrap(runner.model)
        name = self.algorithm_type.__name__
        if not isinstance(self.algorithm, self.algorithm_type):
            raise ConfigError(
                f'{type(self).__name__} needs model type {name}, got '
                f'{type(self.algorithm).__name__}.')
        if checkpoint:
            raise ConfigError(
                f'{name} trains its own supernet and takes no checkpoint; '
                'for pretrained weights pass --cfg-options load_from=CKPT.')
        cfg = getattr(runner, 'cfg', None) or {}
        if (cfg.get('randomness') or {}).get('diff_rank_seed') and \
                dist.get_world_size() > 1:
            raise ConfigError(
                'randomness.diff_rank_seed=True gives every rank its own '
                'Gumbel noise, so the ranks would train different '
                'architectures; leave it False for a differentiable search.')
        run_on_main(lambda: check_fresh_start(
            os.path.join(runner.work_dir, 'last_checkpoint'), resume, force))
        self.model_name = model_name
        self.logger = MMLogger.get_current_instance()

    def run(self) -> str:
        """Trains, then writes the results; returns the derived YAML."""
        self.runner.train()
        check_finite(_named_arch_params(self.algorithm),
                     'search trained, deriving the network', DIVERGED)
        work_dir = self.runner.work_dir
        path = os.path.join(work_dir, 'derived.yaml')
        if dist.is_main_process():
            summary = self.write_results(work_dir, path)
            atomic_write_text(os.path.join(work_dir, 'distributions.json'),
                              json.dumps(self.distributions(), indent=1))
            self.logger.info(f'derived: {path}: {summary}')
        return path

    def distributions(self) -> dict:
        """Candidates and probabilities per searched decision."""
        algorithm = self.algorithm
        return {name: dict(candidates=algorithm.options[name],
                           probabilities=probs)
                for name, probs in algorithm.probabilities().items()}

    @abstractmethod
    def write_results(self, work_dir: str, path: str) -> str:
        """Writes the derived network to ``path`` and any other results;
        returns a one-line summary of the derived network."""
