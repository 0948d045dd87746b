"""The FBNet DNAS search loop: train the stochastic supernet, write the
derived architecture and samples from the learned distributions, then
FBNet's last step: train a few architectures of P_theta briefly and keep
the best on held-out images."""
from __future__ import annotations

import copy
import csv
import io
import math
import os
import random

from mmengine import dist
from mmengine.config import Config

from ..channel_cfg import save_channel_cfg
from ..distributed import run_on_main
from ..errors import ConfigError
from ..fileio import atomic_write_text
from ..models.algorithms import DNAS
from ..mutator import ChannelMutator
from ..registry import LOOPS
from ..visualization import plot_block_distributions
from .child_training import (
    check_isolate,
    fresh_child_config,
    shorten_schedule,
    train_child,
    train_jobs,
)
from .differentiable_search import DifferentiableSearchLoop
from .search_state import SearchState, config_fingerprint, search_dependencies

CANDIDATES_STATE = 'candidates_state.json'


@LOOPS.register_module()
class DNASSearchLoop(DifferentiableSearchLoop):
    """The FBNet DNAS search loop (see :class:`DifferentiableSearchLoop`).

    ``derived.yaml`` holds the argmax block per layer under ``blocks:``,
    the derived network's channel groups under ``channels:``, FLOPs,
    params and LUT latency in meta; ``samples/sample_<k>.yaml`` and
    ``samples.csv`` are architectures drawn from P_theta with their costs
    and log-probability; ``block_distributions.png`` shows P_theta.

    Then FBNet's last step: ``num_candidates`` distinct architectures (the
    argmax, then draws of P_theta in the order of ``samples/``) each train
    from scratch for ``candidate_epochs`` epochs with the recipe of
    ``retrain_config`` (optimizer, schedule compressed to those epochs,
    hooks; lr scaled to one process's batch) on the search's
    ``train_dataloader``, and are scored on held-out images. The best is
    written as ``best.yaml`` (the schema of ``derived.yaml``), all of them
    to ``candidates.csv``; ``candidates/candidate_<k>/`` holds each
    training. Trained candidates are kept in ``candidates_state.json``:
    ``--resume`` trains only the others, and refuses a state made with
    other candidates or another child config. On several ranks every rank
    trains its share of the candidates (in a subprocess).

    Args:
        num_samples: architectures to draw from P_theta.
        seed: seed of the draws.
        num_candidates: architectures to train (FBNet: 6); 0 skips the
            step.
        retrain_config: the training config whose recipe the candidates
            train with (e.g. the method's retrain config).
        candidate_epochs: epochs each candidate trains.
        dataloader: the held-out images the candidates are scored on (not
            the test set); None takes the search config's
            ``val_dataloader``.
        metric: the validation metric ranked on.
        isolate: train every candidate in a subprocess; None does so only
            when the search runs on several ranks.
        Others as :class:`DifferentiableSearchLoop`.
    """
    algorithm_type = DNAS

    def __init__(self, runner, dataloader: dict | None = None,
                 checkpoint: str | None = None, resume: bool = False,
                 model_name: str = '', num_samples: int = 5,
                 seed: int = 0, num_candidates: int = 6,
                 retrain_config: str | None = None,
                 candidate_epochs: int = 10,
                 metric: str = 'accuracy/top1',
                 isolate: bool | None = None, force: bool = False) -> None:
        super().__init__(runner, None, checkpoint, resume, model_name,
                         force)
        self.num_samples, self.seed = num_samples, seed
        for name, value, low in (('num_candidates', num_candidates, 0),
                                 ('candidate_epochs', candidate_epochs, 1)):
            if not (isinstance(value, int) and value >= low):
                raise ConfigError(f'search_loop.{name} must be an integer '
                                  f'>= {low}, got {value!r}.')
        self.num_candidates = num_candidates
        if num_candidates:
            if not retrain_config or not os.path.isfile(retrain_config):
                raise ConfigError(
                    f'search_loop.retrain_config {retrain_config!r} is not '
                    'a config file: the candidates train with its recipe '
                    '(e.g. configs/dnas/dnas_fbnet-small_retrain_1xb64_'
                    'fashion-mnist.py); or set search_loop.num_candidates=0 '
                    'to skip training them.')
            check_isolate(isolate)
            self.held_out = dataloader if dataloader is not None else \
                runner.cfg.get('val_dataloader')
            if self.held_out is None:
                raise ConfigError(
                    'the candidates are scored on held-out images: set '
                    'search_loop.dataloader (or the config\'s '
                    'val_dataloader).')
        self.retrain_config, self.candidate_epochs = (retrain_config,
                                                      candidate_epochs)
        self.metric, self.isolate = metric, isolate
        self.resume, self.force = resume, force

    def run(self) -> str:
        """Searches, writes the results, then trains the candidates;
        returns the derived YAML."""
        path = super().run()
        if self.num_candidates:
            self.train_candidates()
        return path

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

    # --------------------------------------------------------- candidates
    def sample_candidates(self) -> list[dict]:
        """The argmax architecture, then distinct draws of P_theta (the
        draws of ``samples/``, in order) up to ``num_candidates`` (fewer
        when P_theta holds fewer in 100 draws a candidate).

        Returns:
            ``index``, ``source`` (argmax or sample), ``blocks`` and the
            costs of every candidate.
        """
        algorithm, rng = self.algorithm, random.Random(self.seed)
        found = [algorithm.derived_blocks()]
        for _ in range(100 * self.num_candidates):
            if len(found) == self.num_candidates:
                break
            blocks = algorithm.sample_blocks(rng)
            if blocks not in found:
                found.append(blocks)
        if len(found) < self.num_candidates:
            self.logger.warning(
                f'P_theta holds only {len(found)} distinct architectures in '
                f'{100 * self.num_candidates} draws; training those.')
        return [dict(index=k, source='sample' if k else 'argmax',
                     blocks=blocks, **algorithm.cost_of(blocks))
                for k, blocks in enumerate(found)]

    def train_candidates(self) -> str:
        """Trains every candidate not trained yet, writes ``best.yaml``
        and ``candidates.csv``; returns the path of ``best.yaml``."""
        candidates = run_on_main(self.sample_candidates)
        depends = {f'candidate {key}': value for key, value in
                   search_dependencies(self._child_cfg(None)).items()}
        store = SearchState(
            os.path.join(self.runner.work_dir, CANDIDATES_STATE), dict(
                depends, held_out=config_fingerprint(self.held_out),
                metric=self.metric, candidates=config_fingerprint(
                    [c['blocks'] for c in candidates])),
            self.resume, self.force)
        state = store.load()
        if state is None:
            state = dict(candidates=candidates, results={})
            store.save(state)
        else:
            self.logger.info(f'resuming the candidate training from '
                             f'{store.path}: {len(state["results"])} of '
                             f'{len(candidates)} trained')

        def record(done: list) -> None:
            state['results'].update({str(k): value for k, value in done})
            store.save(state)

        train_jobs(
            [c['index'] for c in candidates
             if str(c['index']) not in state['results']],
            lambda k: self._train(candidates[k]), record,
            lambda k: f'{self.metric} of candidate {k}',
            'FBNet candidate training', 'That training diverged (its log '
            'is in WORK_DIR/candidates/candidate_<k>): lower the learning '
            'rate of search_loop.retrain_config')
        return self._write_candidates(candidates, state['results'])

    def _child_cfg(self, candidate: dict | None) -> Config:
        """The training of ``candidate`` (None: without its blocks): the
        search's architecture with its blocks, the search's training and
        held-out data, the recipe of ``retrain_config``."""
        search = self.runner.cfg
        name = f'candidate_{candidate["index"]}' if candidate else 'candidate'
        cfg = fresh_child_config(
            Config.fromfile(self.retrain_config),
            os.path.join(self.runner.work_dir, 'candidates', name), name)
        cfg.model = copy.deepcopy(search.model.architecture)
        cfg.model.backbone.blocks = dict(candidate['blocks']) \
            if candidate else None
        for key in ('train_dataloader', 'data_preprocessor', 'randomness',
                    'default_scope'):
            if key in search:
                cfg[key] = copy.deepcopy(search[key])
        cfg.val_dataloader = copy.deepcopy(self.held_out)
        # a plain classifier: the plain loop (the retrain recipe's may be a
        # per-subnet loop of its SlimmableNetwork)
        cfg.val_cfg = dict()
        cfg.val_evaluator = cfg.get('val_evaluator') or \
            copy.deepcopy(search.val_evaluator)
        cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
        shorten_schedule(cfg, self.candidate_epochs)
        if cfg.get('auto_scale_lr'):  # lr for one process's batch
            cfg.auto_scale_lr.enable = True
        return cfg

    def _train(self, candidate: dict) -> float:
        """Trains one candidate; returns its held-out metric."""
        cfg = self._child_cfg(candidate)
        self.logger.info(
            f'training candidate {candidate["index"]} '
            f'({candidate["source"]}; {_describe(candidate)}), '
            f'{self.candidate_epochs} epoch(s) in {cfg.work_dir}')
        return train_child(cfg, self.metric, self.isolate)

    def _write_candidates(self, candidates: list[dict],
                          results: dict[str, float]) -> str:
        cost = self.algorithm.cost_metric  # breaks ties: cheaper first
        ranked = sorted(candidates, key=lambda c: (
            -results[str(c['index'])], c[cost], c['index']))
        best = ranked[0]
        path = os.path.join(self.runner.work_dir, 'best.yaml')
        if not dist.is_main_process():
            return path
        accuracy = results[str(best['index'])]
        self._write_config(
            best['blocks'], path,
            f'DNAS, best of {len(ranked)} candidates of P_theta on held-out '
            'images', candidate=best['index'],
            candidate_epochs=self.candidate_epochs, metric=self.metric,
            held_out_accuracy=accuracy)
        costs = [key for key in ('flops', 'params', 'latency')
                 if key in best]
        text = io.StringIO()
        writer = csv.writer(text, lineterminator='\n')
        writer.writerow(['rank', 'index', 'source', 'blocks', *costs,
                         f'held_out_{self.metric}'])
        for rank, c in enumerate(ranked, 1):
            writer.writerow([rank, c['index'], c['source'],
                             ' '.join(c['blocks'].values()),
                             *(f'{c[key]:.4f}' if key == 'latency' else
                               int(c[key]) for key in costs),
                             f'{results[str(c["index"])]:.4f}'])
        atomic_write_text(os.path.join(self.runner.work_dir,
                                       'candidates.csv'), text.getvalue())
        self.logger.info('candidates ranked by held-out ' + self.metric +
                         ':\n' + '\n'.join(
                             f'  {rank}. candidate {c["index"]} '
                             f'({c["source"]}): '
                             f'{results[str(c["index"])]:.2f}, '
                             f'{_describe(c)}'
                             for rank, c in enumerate(ranked, 1)))
        self.logger.info(f'best: {path}: candidate {best["index"]}, '
                         f'{self.metric} {accuracy:.2f}')
        return path


def _describe(costs: dict[str, float]) -> str:
    text = (f'{costs["flops"] / 1e6:.3f}M FLOPs, '
            f'{costs["params"] / 1e6:.3f}M params')
    if 'latency' in costs:
        text += f', {costs["latency"]:.3f} ms (LUT)'
    return text
