"""The paper's channel-search network (plain inverted bottlenecks, stem 16)
and its Fashion-MNIST search: the network against a forward written out
with torch.nn.functional, its FLOPs against fvcore, the search end to end
through tools/search.py on tiny data."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmchansearch.channel_cfg import load_channel_cfg
from mmchansearch.engine.rexnet_search import (
    STATE_FILE,
    ReXNetBudget,
    ReXNetSearchLoop,
)
from mmchansearch.errors import ConfigError
from mmchansearch.models.backbones import PlainInvertedBottleneckNet
from mmchansearch.registry import MODELS

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / 'configs' / 'rexnet'
SEARCH = CONFIGS / 'rexnet_search_plain-ib-stem16_1xb64_fashion-mnist.py'
RETRAIN = CONFIGS / 'rexnet_retrain_plain-ib-stem16_1xb64_fashion-mnist.py'
N_TRAIN, N_HELDOUT, N_TEST = 32, 16, 8


@pytest.fixture(autouse=True)
def scope():
    """Types resolve as in the toolbox's configs (default_scope)."""
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        yield


def _randomize(model: torch.nn.Module) -> None:
    """Random BN statistics and affine parameters, so that a wrong BN or a
    missing layer changes the output."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator))
            module.running_var.copy_(
                torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator))


def _conv_bn(x, seq, stride=1, groups=1, act=True):
    """conv + eval BN (+ ReLU6) written out from the module's tensors."""
    conv, bn = seq.conv, seq.bn
    x = F.conv2d(x, conv.weight, None, stride, conv.kernel_size[0] // 2,
                 groups=groups)
    x = (x - bn.running_mean[:, None, None]) / torch.sqrt(
        bn.running_var[:, None, None] + bn.eps)
    x = x * bn.weight[:, None, None] + bn.bias[:, None, None]
    return x.clamp(0, 6) if act else x


def _reference_forward(net, x, widths, strides, stem_stride, expand):
    """MobileNetV2's inverted bottlenecks, from the architecture's
    description (not from the modules' forward)."""
    x = _conv_bn(x, net.stem, stem_stride)
    blocks = [b for stage in net.stages for b in stage]
    block_strides = [s if j == 0 else 1
                     for n, s in zip(net.stage_blocks, strides)
                     for j in range(n)]
    in_channels = net.stem.conv.out_channels
    for i, (block, out, stride) in enumerate(
            zip(blocks, widths, block_strides)):
        hidden = in_channels * (1 if i == 0 else expand)
        y = x if i == 0 else _conv_bn(x, block.expand)
        y = _conv_bn(y, block.dwconv, stride, groups=hidden)
        y = _conv_bn(y, block.project, act=False)
        if stride == 1 and in_channels == out:
            y = y + x
        x, in_channels = y, out
    return _conv_bn(x, net.conv_head)


def test_forward_matches_the_written_out_network():
    widths = [8, 16, 16, 24, 24, 32, 32, 40]
    strides = (1, 2, 2, 2, 1, 2)
    net = PlainInvertedBottleneckNet(
        block_channels=widths, stage_blocks=(1, 1, 1, 2, 1, 2),
        stage_strides=strides, out_channels=64)
    _randomize(net)
    net.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = net(x)[0]
        expected = _reference_forward(net, x, widths, strides, 1, 6)
    assert out.shape == (2, 64, 2, 2)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)
    # the stem is 16 channels at stride 1; no squeeze-excitation; ReLU6
    assert net.stem.conv.out_channels == 16
    assert net.stem.conv.stride == (1, 1)
    assert not any(m.__class__.__name__ == 'SqueezeExcite'
                   for m in net.modules())
    assert not any(isinstance(m, torch.nn.SiLU) for m in net.modules())


def test_partial_residual_adds_to_the_first_channels():
    net = PlainInvertedBottleneckNet(
        block_channels=[8, 16], stage_blocks=(1, 1), stage_strides=(1, 1),
        stem_channels=8, partial_residual=True, out_channels=16)
    block = net.stages[1][0]
    assert block.use_residual  # 8 -> 16 at stride 1
    block.eval()
    x = torch.randn(1, 8, 4, 4)
    with torch.no_grad():
        body = block.project(block.act(block.dwconv(block.expand(x))))
        torch.testing.assert_close(block(x)[:, :8], body[:, :8] + x)
        torch.testing.assert_close(block(x)[:, 8:], body[:, 8:])
    plain = PlainInvertedBottleneckNet(
        block_channels=[8, 16], stage_blocks=(1, 1), stage_strides=(1, 1),
        stem_channels=8, out_channels=16)
    assert not plain.stages[1][0].use_residual


def test_flops_by_the_budget_match_fvcore(count_flops):
    cfg = Config.fromfile(SEARCH)
    widths = [8, 16, 24, 32, 40, 48, 56, 64]
    usage = ReXNetBudget(cfg.model.to_dict(), (3, 32, 32)).estimate(widths)
    model = MODELS.build(dict(
        cfg.model.to_dict(),
        backbone=dict(cfg.model.backbone.to_dict(), block_channels=widths)))
    model.eval()
    assert usage['flops'] == count_flops(model, torch.zeros(1, 3, 32, 32))
    assert usage['params'] == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize('kwargs, match', [
    (dict(block_channels=[16, 8, 24, 24, 32, 32, 40, 40, 48, 48, 56, 56,
                          64, 64, 72, 80]), 'non-decreasing'),
    (dict(block_channels=[16, 24]), '16 blocks'),
    (dict(stage_strides=(1, 2)), 'one stride per stage'),
    (dict(stage_strides=(1, 3, 1, 1, 1, 1)), '1s and 2s'),
    (dict(stem_stride=4), 'stem_stride'),
    (dict(stage_blocks=(1, 0, 2, 2, 2, 2)), 'stage_blocks'),
    (dict(out_indices=(9, )), 'out_indices'),
])
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        PlainInvertedBottleneckNet(**kwargs)


def test_default_layout_is_cifar_style():
    net = PlainInvertedBottleneckNet()  # ReXNet's 16 linear widths
    assert [len(s) for s in net.stages] == [1, 2, 2, 3, 3, 5]
    assert net.block_channels[0] == 16 and net.block_channels[-1] == 185
    net.eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 32, 32))[0].shape == (1, 1280, 4, 4)


# ----------------------------------------------------------------- search
def test_loop_takes_the_network_and_its_depth(tmp_path):
    cfg = Config.fromfile(SEARCH)
    runner = SimpleNamespace(cfg=Config(dict(model=cfg.model.to_dict())),
                             work_dir=str(tmp_path))
    loop = ReXNetSearchLoop(
        runner, **{k: v for k, v in cfg.search_loop.items()
                   if k != 'type'} | dict(num_candidates=4,
                                          max_breakpoints=0,
                                          stagewise_prob=0.0))
    assert loop.stage_blocks == [1, 1, 1, 2, 1, 2]
    candidates = loop.sample_candidates()
    assert {c['kind'] for c in candidates} == {'linear'}
    for cand in candidates:
        # straight lines: equal steps before rounding to the divisor
        steps = [b - a for a, b in zip(cand['channels'],
                                       cand['channels'][1:])]
        assert max(steps) - min(steps) <= 8, cand['channels']
        assert 3.0e6 <= cand['flops'] <= 4.5e6
        assert cand['params'] <= 0.3e6


def test_search_runs_end_to_end(tmp_path, make_fashion_mnist, run_tool,
                                rexnet_search_options):
    root = make_fashion_mnist(tmp_path / 'data', N_TRAIN + N_HELDOUT,
                              N_TEST)
    work_dir = tmp_path / 'search'
    run_tool('tools/search.py', SEARCH, '--work-dir', work_dir,
             '--cfg-options', *rexnet_search_options(
                 root, N_TRAIN, N_HELDOUT, max_breakpoints=0,
                 max_flops=4.5e6, min_flops=2.0e6))
    state = json.loads((work_dir / STATE_FILE).read_text())
    assert state['stage_blocks'] == [1, 1, 1, 1, 1, 1]
    assert set(state['results']) == {'0/0', '1/0'}
    rows = list(csv.DictReader((work_dir / 'candidates.csv').open()))
    assert len(rows) == 2
    best = load_channel_cfg(work_dir / 'best.yaml')
    widths = [int(c) for c in rows[0]['channels'].split()]
    assert list(best.blocks.values()) == widths
    # every candidate trained the paper's network, at its widths
    log = next((work_dir / 'candidate_0' / 'seed_0').glob('*/*.log'))
    assert 'PlainInvertedBottleneckNet' in log.read_text()
    # the retrain config builds the best widths from model.channel_cfgs
    cfg = Config.fromfile(RETRAIN)
    cfg.merge_from_dict({
        'model.architecture.backbone.stage_blocks': [1] * 6,
        'model.channel_cfgs': str(work_dir / 'best.yaml')})
    assert cfg.search_loop is None
    assert cfg.test_dataloader.dataset.test_mode is True
    model = MODELS.build(cfg.model).eval()
    stages = model.architecture.backbone.stages
    assert [b.out_channels for s in stages for b in s] == widths
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 32, 32), mode='tensor').shape == \
            (2, 10)
