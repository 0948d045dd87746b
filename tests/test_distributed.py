"""Two CPU processes (gloo) train an AutoSlim supernet with different data.

Every rank must sample the same subnets at every step, and the averaged
gradients must leave the weights identical on both ranks.
"""
import os
import socket

import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from mmchansearch.distributed import shared_rng
from mmchansearch.models import AutoSlim, ChannelSearchDDP

STEPS = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _build_autoslim() -> AutoSlim:
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
            num_samples=4, seed=0)


def _worker(rank: int, port: int, out_dir: str) -> None:
    torch_dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                                  rank=rank, world_size=2)
    torch.set_num_threads(1)
    model = _build_autoslim()
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
        inputs = [torch.randint(0, 255, (3, 16, 16), generator=generator,
                                dtype=torch.uint8) for _ in range(4)]
        samples = [DataSample().set_gt_label(int(torch.randint(
            0, 4, (1, ), generator=generator))) for _ in range(4)]
        wrapped.train_step(dict(inputs=inputs, data_samples=samples),
                           optim_wrapper)
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
