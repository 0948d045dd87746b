"""Analytic FLOPs and params against fvcore and the exported models."""
from __future__ import annotations

import copy
import random

import pytest
import torch
from torch import nn

from mmchansearch.analysis import analyze_channels
from mmchansearch.estimators import ResourceEstimator
from mmchansearch.mutator import ChannelMutator
from mmchansearch.registry import MODELS

NUM_CONFIGS = 20


def _num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _sample_input(mutator: ChannelMutator) -> torch.Tensor:
    return torch.randn(1, *mutator.input_shape)


@pytest.mark.parametrize('seed', range(NUM_CONFIGS))
def test_subnet_flops_and_params_are_exact(seed, classifier_supernet,
                                           count_flops):
    mutator = classifier_supernet.mutator
    mutator.sample(random.Random(seed))
    static = mutator.export_static()
    usage = mutator.estimate()
    assert usage['flops'] == count_flops(static, _sample_input(mutator))
    assert usage['params'] == _num_params(static)


def test_width_one_subnet_is_exact(classifier_supernet, count_flops):
    mutator = classifier_supernet.mutator
    mutator.set_choices({g: 1 for g in mutator.widths})
    static = mutator.export_static()
    usage = mutator.estimate()
    assert usage['flops'] == count_flops(static, _sample_input(mutator))
    assert usage['params'] == _num_params(static)


def test_max_config_equals_unmodified_model(classifier_name, make_classifier,
                                            make_supernet, count_flops):
    original = make_classifier(classifier_name)
    supernet = make_supernet(copy.deepcopy(original))
    mutator = supernet.mutator
    mutator.set_max()
    usage = mutator.estimate()
    assert usage['flops'] == count_flops(original, _sample_input(mutator))
    assert usage['params'] == _num_params(original)
    assert mutator.estimate(mutator.max_widths) == usage


@pytest.mark.parametrize('backbone, in_channels, figure, rel', [
    # MobileNetV2 1.0x: 300.77M multiply-accumulates (paper: 300M).
    (dict(type='MobileNetV2'), 1280, 300.77e6, 2e-5),
    # ResNet-18: 1.814G conv + linear (papers and mmpretrain: 1.82G).
    (dict(type='ResNet', depth=18), 512, 1.82e9, 5e-3),
], ids=['mobilenet_v2', 'resnet18'])
def test_imagenet_flops_match_papers(backbone, in_channels, figure, rel,
                                     count_flops):
    model = MODELS.build(dict(
        type='ImageClassifier', backbone=backbone,
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=1000,
                  in_channels=in_channels))).eval()
    analysis = analyze_channels(model, (3, 224, 224))
    flops = ResourceEstimator(analysis, model).flops({})
    assert flops == count_flops(model, torch.zeros(1, 3, 224, 224))
    assert flops == pytest.approx(figure, rel=rel)


# ------------------------------------------------------------ tiny models
@pytest.mark.parametrize('seed', range(5))
def test_tiny_net_is_exact(seed, tiny_mutator, count_flops):
    tiny_mutator.sample(random.Random(seed))
    static = tiny_mutator.export_static()
    usage = tiny_mutator.estimate()
    assert usage['flops'] == count_flops(static, torch.zeros(1, 3, 16, 16))
    assert usage['params'] == _num_params(static)


def test_grouped_conv_counts_exactly(count_flops):
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1),
                          nn.Conv2d(8, 12, 3, padding=1, groups=4),
                          nn.Conv2d(12, 6, 1), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(6, 2))
    analysis = analyze_channels(model, (3, 8, 8))
    estimator = ResourceEstimator(analysis, model)
    usage = estimator.estimate({})
    assert usage['flops'] == count_flops(model, torch.zeros(1, 3, 8, 8))
    assert usage['params'] == _num_params(model)
    assert estimator.flops({}) == usage['flops']
    assert estimator.params({}) == usage['params']
    narrow = estimator.estimate({'0': 4, '1': 8})
    # grouped conv: 3x3 x (4 / 4 groups) inputs x 8 outputs x 64 positions
    assert usage['flops'] - narrow['flops'] == (
        27 * 4 * 64 + 9 * (2 * 12 - 1 * 8) * 64 + 4 * 6 * 64)


def test_missing_groups_count_at_max(tiny_net, tiny_mutator):
    full = tiny_mutator.estimate(tiny_mutator.max_widths)
    assert tiny_mutator.estimate({}) == full
    smaller = tiny_mutator.estimate({'expand': 16})
    # expand feeds dw (3x3, 8x8 positions) and project; both shrink.
    assert smaller['flops'] < full['flops']
    assert full['params'] - smaller['params'] == (
        16 * 16             # expand weights
        + 16 * 2            # expand_bn affine
        + 16 * (9 + 1)      # dw weights and bias
        + 16 * 2            # dw_bn affine
        + 16 * 8            # se_reduce weights (input side)
        + 8 * 16 + 16       # se_expand weights and bias (output side)
        + 16 * 24)          # project weights


def test_layer_called_twice_counts_twice(shared_layer_net, count_flops):
    """fvcore counts every call of a shared layer; so must the estimator."""
    analysis = analyze_channels(shared_layer_net, (3, 16, 16))
    flops = ResourceEstimator(analysis, shared_layer_net).flops({})
    assert flops == count_flops(shared_layer_net,
                                torch.zeros(1, 3, 16, 16))
