"""The ReXNet backbone and its configs."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmchansearch.analysis import analyze_channels
from mmchansearch.models.backbones.rexnet import ReXNet, rexnet_channels
from mmchansearch.registry import MODELS, TRANSFORMS

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / 'configs' / 'rexnet'
WIDTHS = (0.9, 1.0, 1.3, 1.5, 2.0, 3.0)
# Published params and FLOPs (multiply-accumulates) at 224x224, 1000
# classes: (clovaai/rexnet README and the paper's table).
PUBLISHED = {0.9: (4.1e6, 0.35e9), 1.0: (4.8e6, 0.40e9)}


@pytest.fixture(autouse=True)
def scope():
    """Types resolve as in the toolbox's configs (default_scope)."""
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        yield


def _classifier(num_classes: int = 10, **backbone) -> dict:
    channels = ReXNet(**backbone).out_channels
    return dict(type='ImageClassifier',
                backbone=dict(type='ReXNet', **backbone),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(type='LinearClsHead', num_classes=num_classes,
                          in_channels=channels))


# --------------------------------------------------------------- channels
@pytest.mark.parametrize('widen_factor, first, last', [
    (0.9, 16, 168), (1.0, 16, 185), (1.3, 21, 240), (2.0, 32, 370)])
def test_channels_grow_linearly(widen_factor, first, last):
    channels = rexnet_channels(widen_factor)
    assert len(channels) == 16
    assert (channels[0], channels[-1]) == (first, last)
    step = 180 / 16 * widen_factor
    for i, (a, b) in enumerate(zip(channels, channels[1:])):
        assert abs((b - a) - step) <= 1, (i, channels)
    # no drift: every width is the line, rounded (below 1.0x the first
    # block keeps 16 channels)
    start = 16 * max(widen_factor, 1.0)
    for i, c in enumerate(channels):
        assert abs(c - (start + i * step)) <= 0.5 + 1e-9, (i, channels)


def test_backbone_chains_the_channels():
    backbone = ReXNet()
    blocks = [b for stage in backbone.stages for b in stage]
    assert [b.out_channels for b in blocks] == backbone.block_channels
    assert blocks[0].in_channels == 32  # the stem
    for prev, block in zip(blocks, blocks[1:]):
        assert block.in_channels == prev.out_channels
    assert [len(s) for s in backbone.stages] == [1, 2, 2, 3, 3, 5]
    assert backbone.conv_head.conv.out_channels == 1280
    # SE from the third stage on, reduction 12 of the expanded width
    assert not any(hasattr(b.se, 'reduce') for s in backbone.stages[:2]
                   for b in s)
    block = backbone.stages[2][0]
    assert block.se.reduce.out_channels == 6 * block.in_channels // 12


def test_divisor_rounds_every_width():
    backbone = ReXNet(divisor=8)
    widths = [m.out_channels for m in backbone.modules()
              if isinstance(m, torch.nn.Conv2d)]
    assert all(w % 8 == 0 for w in widths)


@pytest.mark.parametrize('widen_factor', sorted(PUBLISHED))
def test_flops_and_params_match_published(widen_factor, count_flops):
    model = MODELS.build(_classifier(1000, widen_factor=widen_factor))
    params, flops = PUBLISHED[widen_factor]
    measured_params = sum(p.numel() for p in model.parameters())
    measured_flops = count_flops(model, torch.randn(1, 3, 224, 224))
    assert measured_params == pytest.approx(params, rel=0.03)
    assert measured_flops == pytest.approx(flops, rel=0.03)


# ---------------------------------------------------------------- forward
def test_classifier_runs_at_32x32():
    model = MODELS.build(_classifier(widen_factor=0.5)).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 32, 32), mode='tensor')
    assert logits.shape == (2, 10)


def test_out_indices_give_every_stage():
    backbone = ReXNet(widen_factor=0.5, out_indices=range(7)).eval()
    with torch.no_grad():
        outs = backbone(torch.randn(1, 3, 64, 64))
    last = [stage[-1].out_channels for stage in backbone.stages]
    assert [o.shape[1] for o in outs] == last + [backbone.out_channels]
    assert [o.shape[-1] for o in outs] == [32, 16, 8, 4, 4, 2, 2]


def test_partial_residual_adds_to_the_first_channels():
    torch.manual_seed(0)
    backbone = ReXNet(widen_factor=0.5).eval()
    block = backbone.stages[1][1]  # stride 1, widening
    assert block.use_residual and block.in_channels < block.out_channels
    x = torch.randn(2, block.in_channels, 8, 8)
    with torch.no_grad():
        branch = block.project(block.act(block.se(block.dwconv(
            block.expand(x)))))
        out = block(x)
    c = block.in_channels
    torch.testing.assert_close(out[:, :c], branch[:, :c] + x)
    torch.testing.assert_close(out[:, c:], branch[:, c:])


def test_frozen_stages_and_norm_eval():
    backbone = ReXNet(widen_factor=0.5, frozen_stages=2, norm_eval=True)
    backbone.train()
    assert not any(p.requires_grad for p in backbone.stem.parameters())
    assert not any(p.requires_grad
                   for p in backbone.stages[1].parameters())
    assert all(p.requires_grad for p in backbone.stages[2].parameters())
    bns = [m for m in backbone.modules()
           if isinstance(m, torch.nn.BatchNorm2d)]
    assert not any(bn.training for bn in bns)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match='out_indices'):
        ReXNet(out_indices=(7, ))
    with pytest.raises(ValueError, match='frozen_stages'):
        ReXNet(frozen_stages=7)


# ---------------------------------------------------------------- configs
@pytest.mark.parametrize('widen_factor', WIDTHS)
def test_config_builds(widen_factor):
    cfg = Config.fromfile(CONFIGS / f'rexnet_{widen_factor}x_8xb64_in1k.py')
    assert cfg.default_scope == 'mmchansearch'
    assert cfg.model.backbone.widen_factor == widen_factor
    model = MODELS.build(cfg.model)
    assert model.head.fc.in_features == model.backbone.out_channels


def test_recipe_of_the_paper():
    cfg = Config.fromfile(CONFIGS / 'rexnet_1.0x_8xb64_in1k.py')
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.momentum,
            optimizer.nesterov, optimizer.weight_decay) == (
                'SGD', 0.5, 0.9, True, 1e-5)
    assert cfg.train_dataloader.batch_size * 8 == \
        cfg.auto_scale_lr.base_batch_size == 512
    assert cfg.train_cfg.max_epochs == cfg.param_scheduler[-1].end == 400
    assert cfg.model.head.loss.label_smooth_val == 0.1
    assert cfg.train_dataloader.dataset.type == 'ImageNet'
    assert cfg.train_dataloader.dataset.data_root == 'data/imagenet'
    assert cfg.model.head.dropout_rate == 0.2  # the official --drop 0.2
    for pipeline in (cfg.train_pipeline, cfg.test_pipeline):
        for transform in pipeline:
            TRANSFORMS.build(transform)


def test_head_drops_features_in_training_only():
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        head = MODELS.build(dict(type='DropoutLinearClsHead',
                                 dropout_rate=0.5, num_classes=4,
                                 in_channels=64))
    feats = (torch.ones(8, 64), )
    head.eval()
    assert torch.equal(head(feats), head(feats))
    assert torch.equal(head.pre_logits(feats), feats[0])
    head.train()
    dropped = head.pre_logits(feats)
    assert 0 < (dropped == 0).float().mean() < 1
    assert torch.allclose(dropped[dropped != 0], torch.tensor(2.0))
    assert sum(p.numel() for p in head.parameters()) == 64 * 4 + 4
    with pytest.raises(Exception, match='dropout_rate'):
        MODELS.build(dict(type='DropoutLinearClsHead', dropout_rate=1.0,
                          num_classes=4, in_channels=64))


# ------------------------------------------------------- channel analysis
def test_channel_analysis_runs(capsys):
    model = MODELS.build(_classifier(widen_factor=0.5))
    analysis = analyze_channels(model, (3, 32, 32))
    assert analysis.groups
    # Expansion widths stay searchable; the block outputs joined by the
    # partial residuals (slice + cat) stay fixed, with a reason: the
    # channels before the residual's constant offset (``out[:, :c]``), or
    # all of a concatenation the walk cannot slice.
    assert 'backbone.stages.2.0.expand.conv' in analysis.groups
    assert set(analysis.splits.values()) == {'constant'}
    assert analysis.fixed and all(
        'Cat' in reason or 'Slice at constant channel offsets' in reason
        for reason in analysis.fixed)
