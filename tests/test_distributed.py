"""Two CPU processes (gloo) train search algorithms with different data.

Under :class:`ChannelSearchDDP`, every rank of an AutoSlim supernet must
sample the same subnets at every step, and the averaged gradients must leave
the weights (and a differentiable search's architecture parameters)
identical on both ranks.
"""
import os
import socket
import time
from datetime import timedelta

import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from mmchansearch.distributed import check_finite, shared_rng
from mmchansearch.errors import NonFiniteError
from mmchansearch.models import DNAS, AutoSlim, ChannelSearchDDP
from mmchansearch.optim import SeparateOptimWrapperConstructor
from mmchansearch.registry import MODELS

STEPS = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _build_autoslim(seed: int = 0) -> AutoSlim:
    """The same initial weights on every rank, the width sampler seeded
    with ``seed``."""
    torch.manual_seed(0)  # different seeds per rank would be caught by DDP
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        return AutoSlim(
            architecture=dict(
                type='ImageClassifier',
                backbone=dict(type='MobileNetV2', widen_factor=0.35),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(type='LinearClsHead', num_classes=4,
                          in_channels=1280),
                data_preprocessor=dict(mean=[127.5] * 3, std=[64.0] * 3)),
            mutator=dict(type='ChannelMutator', input_shape=(3, 16, 16),
                         width_ratios=[0.25, 0.5, 0.75, 1.0]),
            num_samples=4, seed=seed)


def _random_batch(generator: torch.Generator, size: int = 4) -> dict:
    """``size`` uint8 images of 3x16x16 and labels among 4 classes."""
    inputs = [torch.randint(0, 255, (3, 16, 16), generator=generator,
                            dtype=torch.uint8) for _ in range(size)]
    samples = [DataSample().set_gt_label(int(torch.randint(
        0, 4, (1, ), generator=generator))) for _ in range(size)]
    return dict(inputs=inputs, data_samples=samples)


def _worker(rank: int, port: int, out_dir: str) -> None:
    torch_dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                                  rank=rank, world_size=2)
    torch.set_num_threads(1)
    model = _build_autoslim(seed=rank)  # rank 0's seed must win
    sampled = []
    set_choices = model.mutator.set_choices

    def recording_set_choices(choices):
        set_choices(choices)
        sampled.append(dict(model.mutator.current_choices()))

    model.mutator.set_choices = recording_set_choices
    wrapped = ChannelSearchDDP(module=model)
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    generator = torch.Generator().manual_seed(100 + rank)  # rank's own data
    for _ in range(STEPS):
        wrapped.train_step(_random_batch(generator), optim_wrapper)
    unseeded_draw = shared_rng().random()  # rank 0's seed must win
    torch.save(dict(sampled=sampled, state=model.state_dict(),
                    unseeded_draw=unseeded_draw),
               os.path.join(out_dir, f'rank{rank}.pth'))
    torch_dist.destroy_process_group()


def test_ranks_sample_same_subnets_and_keep_same_weights(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=2)
    rank0 = torch.load(tmp_path / 'rank0.pth', weights_only=False)
    rank1 = torch.load(tmp_path / 'rank1.pth', weights_only=False)
    # max, min and two random subnets per step
    assert len(rank0['sampled']) == STEPS * 4
    assert rank0['sampled'] == rank1['sampled']
    assert rank0['unseeded_draw'] == rank1['unseeded_draw']
    randoms = [c for i, c in enumerate(rank0['sampled']) if i % 4 >= 2]
    assert len({tuple(c.values()) for c in randoms}) > 1, \
        'random subnets should differ between draws'
    for key, value in rank0['state'].items():
        assert torch.isfinite(value.float()).all(), key
        if key.endswith(('running_mean', 'running_var',
                         'num_batches_tracked')):
            continue  # BN statistics follow each rank's own data
        assert torch.allclose(value, rank1['state'][key], atol=1e-6), key
    moved = _build_autoslim().state_dict()
    assert any(not torch.equal(moved[k], v)
               for k, v in rank0['state'].items()), 'training changed nothing'


# --------------------------------------------------- differentiable search
def _build_dnas() -> DNAS:
    """FBNet's DNAS over a two-layer search space, FLOPs as the cost."""
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        return MODELS.build(dict(
            type='DNAS',
            architecture=dict(
                type='ImageClassifier',
                backbone=dict(type='FBNetSearchSpace',
                              stages=((1, 8, 1), (2, 16, 2)),
                              stem_channels=8, stem_stride=1,
                              last_channels=32),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(type='LinearClsHead', num_classes=4,
                          in_channels=32)),
            input_shape=(3, 16, 16), cost_metric='flops',
            loss_form='additive'))


def _dnas_worker(rank: int, port: int, out_dir: str) -> None:
    torch_dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                                  rank=rank, world_size=2)
    torch.set_num_threads(1)
    model = _build_dnas()
    wrapped = ChannelSearchDDP(module=model)
    optim_wrapper = SeparateOptimWrapperConstructor(dict(
        architecture=dict(optimizer=dict(type='SGD', lr=0.05)),
        arch_params=dict(optimizer=dict(type='Adam', lr=0.05))))(wrapped)
    generator = torch.Generator().manual_seed(100 + rank)  # rank's own data
    for _ in range(STEPS):
        wrapped.train_step(_random_batch(generator), optim_wrapper)
        wrapped.module.arch_step(_random_batch(generator), optim_wrapper)
    torch.save(dict(state=model.state_dict()),
               os.path.join(out_dir, f'rank{rank}.pth'))
    torch_dist.destroy_process_group()


def test_differentiable_search_keeps_same_weights_and_theta(tmp_path):
    mp.spawn(_dnas_worker, args=(_free_port(), str(tmp_path)), nprocs=2)
    rank0 = torch.load(tmp_path / 'rank0.pth', weights_only=False)['state']
    rank1 = torch.load(tmp_path / 'rank1.pth', weights_only=False)['state']
    start = _build_dnas().state_dict()
    thetas = [k for k in rank0 if k.startswith('arch_params.')]
    weights = [k for k in rank0 if k.startswith('architecture.') and
               not k.endswith(('running_mean', 'running_var',
                               'num_batches_tracked'))]  # rank's own data
    assert thetas and weights
    for key in thetas + weights:
        assert torch.isfinite(rank0[key]).all(), key
        assert torch.allclose(rank0[key], rank1[key], atol=1e-6), key
    assert all(not torch.equal(start[k], rank0[k]) for k in thetas), \
        'the architecture steps left theta unchanged'
    assert any(not torch.equal(start[k], rank0[k]) for k in weights), \
        'the weight steps changed nothing'


# ------------------------------------------------------- non-finite numbers
def test_check_finite_names_the_non_finite_values():
    check_finite({'loss': 0.5, 'alpha': torch.zeros(3)}, 'step 1', 'Fix it')
    with pytest.raises(NonFiniteError) as err:
        check_finite({'loss': float('nan'), 'top-1': 50.0,
                      'alpha': torch.tensor([0.0, float('inf'), 1.0])},
                     'greedy search step 3', 'Lower the learning rate')
    assert str(err.value) == (
        'greedy search step 3: non-finite loss = nan, alpha = 1 of 3 values '
        'NaN/inf. Lower the learning rate; nothing was written from these '
        'numbers.')


def _non_finite_worker(rank: int, port: int, out_dir: str) -> None:
    torch_dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
        world_size=2, timeout=timedelta(seconds=60))
    start = time.perf_counter()
    loss = float('nan') if rank == 1 else 0.5  # only rank 1 diverged
    try:
        check_finite({'held-out loss': loss}, 'step 3', 'Fix it')
        message = None
    except NonFiniteError as err:
        message = str(err)
    torch.save(dict(message=message, seconds=time.perf_counter() - start),
               os.path.join(out_dir, f'rank{rank}.pth'))
    torch_dist.destroy_process_group()


def test_every_rank_stops_when_one_rank_sees_a_nan(tmp_path):
    mp.spawn(_non_finite_worker, args=(_free_port(), str(tmp_path)),
             nprocs=2)
    rank0 = torch.load(tmp_path / 'rank0.pth')
    rank1 = torch.load(tmp_path / 'rank1.pth')
    assert rank1['message'].startswith(
        'step 3: non-finite held-out loss = nan. Fix it')
    assert rank0['message'].startswith(
        'step 3: non-finite values on another rank. Fix it')
    assert max(rank0['seconds'], rank1['seconds']) < 10


def _failing_rank_worker(rank: int, port: int, out_dir: str) -> None:
    from mmchansearch.distributed import run_on_every_rank, run_on_main
    from mmchansearch.errors import ConfigError
    torch_dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
        world_size=2, timeout=timedelta(seconds=60))

    def rank0_step():  # e.g. reading a search state, converting weights
        raise ConfigError('the state is for another search')

    def every_rank_step():  # e.g. training this rank's candidate
        if rank == 1:
            raise OSError('disk full')
        return rank

    results = {}
    for name, step, runner in (('main', rank0_step, run_on_main),
                               ('every', every_rank_step,
                                run_on_every_rank)):
        start = time.perf_counter()
        try:
            runner(step)
            results[name] = None
        except Exception as err:  # noqa: BLE001  (what the rank saw)
            results[name] = f'{type(err).__name__}: {err}'
        results[f'{name}_seconds'] = time.perf_counter() - start
    torch.save(results, os.path.join(out_dir, f'rank{rank}.pth'))
    torch_dist.destroy_process_group()


def test_a_failure_on_one_rank_ends_every_rank(tmp_path):
    """A rank-0-only step or one rank's own work fails: every rank raises
    at once instead of waiting in the next collective until the timeout."""
    mp.spawn(_failing_rank_worker, args=(_free_port(), str(tmp_path)),
             nprocs=2)
    ranks = [torch.load(tmp_path / f'rank{r}.pth') for r in (0, 1)]
    for result in ranks:  # a user error is raised as itself everywhere
        assert result['main'] == 'ConfigError: the state is for another ' \
            'search'
        assert result['main_seconds'] < 10 and result['every_seconds'] < 10
    assert ranks[1]['every'] == 'OSError: disk full'
    assert ranks[0]['every'] == \
        'RuntimeError: rank 1 failed (OSError: disk full); see its log.'


# ------------------------------------------------- FURs on several ranks
_QUARTER_RESNET = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=16,
                  base_channels=16),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=128))


def _fur_setup(drop_at: str = 'readers'):
    """The same supernet, batches and rates in every process."""
    from mmchansearch.coverage import randomize_batch_norms
    from mmchansearch.engine.flops_utilization import (
        ChannelDropout,
        UtilizationMeter,
        dropout_rates,
        group_flops,
    )
    from mmchansearch.models.algorithms import ChannelSupernet
    from mmchansearch.mutator import ChannelMutator
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        model = ChannelSupernet(_QUARTER_RESNET, ChannelMutator(
            input_shape=(3, 32, 32), divisor=8, min_width=8)).eval()
    randomize_batch_norms(model)
    gen = torch.Generator().manual_seed(1)
    batches = [dict(inputs=[torch.randint(0, 255, (3, 32, 32), generator=gen,
                                          dtype=torch.uint8)
                            for _ in range(8)],
                    data_samples=[DataSample().set_gt_label(i % 10)
                                  for i in range(8)]) for _ in range(4)]
    mutator = model.mutator
    dropout = ChannelDropout(repeats=2)
    _, share = group_flops(mutator, mutator.current_choices())
    meter = UtilizationMeter(model, mutator, dropout, 'loss', drop_at=drop_at)
    return meter, batches, mutator.searchable_groups, dropout_rates(dropout,
                                                                   share)


def _fur_worker(rank: int, port: int, out_dir: str, drop_at: str) -> None:
    torch_dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
        world_size=2, timeout=timedelta(seconds=60))
    meter, batches, groups, rates = _fur_setup(drop_at)
    # the held-out batches as held_out_batches deals them: r, r + 2, ...
    result = meter.measure(batches[rank::2], groups, rates)
    torch.save(result.damage, os.path.join(out_dir, f'rank{rank}.pth'))
    torch_dist.destroy_process_group()


@pytest.mark.parametrize('drop_at', ['readers', 'outputs'])
def test_flops_utilization_does_not_depend_on_the_number_of_ranks(
        tmp_path, drop_at):
    """Network Adjustment's dropout damage on 2 gloo processes equals one
    process's (either dropout site): the masks of a batch follow its place
    in the one-process order, not the rank."""
    meter, batches, groups, rates = _fur_setup(drop_at)
    single = meter.measure(batches, groups, rates).damage
    mp.spawn(_fur_worker, args=(_free_port(), str(tmp_path), drop_at),
             nprocs=2)
    for rank in (0, 1):
        double = torch.load(tmp_path / f'rank{rank}.pth')
        assert double.keys() == single.keys()
        for group, value in single.items():
            assert double[group] == pytest.approx(value, rel=1e-9,
                                                  abs=1e-12), group
