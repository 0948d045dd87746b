"""ChannelMutator: candidates, choices, validation and static export."""
from __future__ import annotations

import random

import pytest
import torch
from mmengine.logging import MMLogger
from torch import nn

from mmchansearch.channel_cfg import ChannelConfig
from mmchansearch.dynamic_ops import is_dynamic
from mmchansearch.errors import BudgetError, ChannelConfigError, ConfigError
from mmchansearch.mutator import ChannelMutator
from mmchansearch.registry import MODELS

TINY_INPUT_SHAPE = (3, 16, 16)


def _prepared(model: nn.Module, **kwargs) -> ChannelMutator:
    mutator = ChannelMutator(input_shape=TINY_INPUT_SHAPE, **kwargs)
    mutator.prepare(model)
    return mutator


# ------------------------------------------------------------ candidates
@pytest.mark.parametrize('divisor, min_width', [(1, 1), (4, 4), (8, 16)])
def test_candidates_are_ascending_and_respect_rounding(
        divisor, min_width, make_classifier, make_supernet):
    supernet = make_supernet(make_classifier('mobilenet_v2'),
                             divisor=divisor, min_width=min_width)
    mutator = supernet.mutator
    for group, top in mutator.max_widths.items():
        values = mutator.candidates(group)
        assert values == sorted(set(values)), group
        assert values[-1] == top, group
        for width in values:
            assert min(min_width, top) <= width <= top, (group, width)
            assert width == top or width % divisor == 0, (group, width)


def test_default_candidates_are_twelfths(tiny_mutator):
    assert tiny_mutator.candidates('project') == list(range(2, 25, 2))
    assert tiny_mutator.candidates('res_conv1') == list(range(1, 13))


def test_candidates_round_to_divisor(tiny_net):
    mutator = _prepared(tiny_net, divisor=8, min_width=8)
    assert mutator.candidates('project') == [8, 16, 24]
    assert mutator.candidates('se_reduce') == [8]
    assert mutator.candidates('res_conv1') == [8, 12]


def test_custom_width_ratios(tiny_net):
    mutator = _prepared(tiny_net, width_ratios=[0.5, 0.25])
    assert mutator.candidates('expand') == [8, 16, 32]


def test_frozen_group_has_only_its_max(tiny_net):
    mutator = _prepared(tiny_net, frozen_groups=['expand'])
    assert mutator.candidates('expand') == [32]
    assert 'expand' not in mutator.searchable_groups
    mutator.set_min()
    assert mutator.current_choices()['expand'] == 32
    for seed in range(10):
        assert mutator.sample(random.Random(seed))['expand'] == 32
    # a channel_cfg may still set it
    mutator.set_choices({**mutator.max_widths, 'expand': 7})
    assert mutator.current_choices()['expand'] == 7


# --------------------------------------------------------------- choices
def test_set_max_and_min(tiny_mutator):
    tiny_mutator.set_min()
    assert tiny_mutator.current_choices() == {
        g: tiny_mutator.candidates(g)[0] for g in tiny_mutator.widths}
    tiny_mutator.set_max()
    assert tiny_mutator.current_choices() == tiny_mutator.max_widths


def test_sample_is_seeded_and_uses_candidates(tiny_mutator):
    first = tiny_mutator.sample(random.Random(3))
    assert tiny_mutator.current_choices() == first
    assert tiny_mutator.sample(random.Random(3)) == first
    for group, width in first.items():
        assert width in tiny_mutator.candidates(group)
    samples = {tuple(tiny_mutator.sample(random.Random(s)).values())
               for s in range(5)}
    assert len(samples) > 1


def test_set_choices_accepts_channel_config(tiny_mutator):
    widths = {g: 1 for g in tiny_mutator.widths}
    tiny_mutator.set_choices(ChannelConfig(widths))
    assert tiny_mutator.current_choices() == widths


def test_set_choices_rejects_bad_choices_without_changing(tiny_mutator):
    tiny_mutator.set_min()
    before = tiny_mutator.current_choices()
    bad = {**tiny_mutator.max_widths, 'expand': 33}
    with pytest.raises(ChannelConfigError, match=r"'expand'.*1\.\.32"):
        tiny_mutator.set_choices(bad)
    with pytest.raises(ChannelConfigError, match="'nope'"):
        tiny_mutator.set_choices({**tiny_mutator.max_widths, 'nope': 1})
    assert tiny_mutator.current_choices() == before


def test_estimate_follows_current_choices(tiny_mutator):
    tiny_mutator.set_max()
    full = tiny_mutator.estimate()
    assert full == tiny_mutator.estimate(tiny_mutator.max_widths)
    tiny_mutator.set_min()
    small = tiny_mutator.estimate()
    assert small['flops'] < full['flops']
    assert small['params'] < full['params']


def test_model_before_prepare_is_an_error():
    with pytest.raises(RuntimeError, match='prepare'):
        _ = ChannelMutator().model


def test_mutator_builds_from_registry():
    mutator = MODELS.build(dict(type='ChannelMutator', input_shape=[3, 8, 8],
                                divisor=4))
    assert isinstance(mutator, ChannelMutator)
    assert mutator.input_shape == (3, 8, 8) and mutator.divisor == 4


# ---------------------------------------------------------------- errors
def test_unknown_frozen_group_is_an_error(tiny_net):
    with pytest.raises(ConfigError, match="'stme'"):
        _prepared(tiny_net, frozen_groups=['stme'])


@pytest.mark.parametrize('ratios', [[], [0], [1.5], [-0.25, 0.5], 0.5,
                                    ['0.5']],
                         ids=['empty', 'zero', 'above-one', 'negative',
                              'scalar', 'string'])
def test_bad_width_ratios_are_an_error(ratios):
    with pytest.raises(ConfigError, match='width_ratios'):
        ChannelMutator(input_shape=TINY_INPUT_SHAPE, width_ratios=ratios)


@pytest.mark.parametrize('kwargs', [dict(divisor=0), dict(min_width=0)])
def test_bad_divisor_or_min_width_is_an_error(kwargs):
    with pytest.raises(ConfigError, match='divisor and min_width'):
        ChannelMutator(input_shape=TINY_INPUT_SHAPE, **kwargs)


@pytest.mark.parametrize('shape', [(3, 16), (1, 3, 16, 16), (3, 0, 16),
                                   (3, -1, 16), 224],
                         ids=['two-dims', 'four-dims', 'zero-height',
                              'negative-height', 'int'])
def test_bad_input_shape_is_an_error(shape, tiny_net):
    with pytest.raises(ConfigError, match='input_shape'):
        ChannelMutator(input_shape=shape).prepare(tiny_net)


# ---------------------------------------------------------------- export
def test_export_static_is_a_smaller_plain_copy(tiny_net, tiny_mutator):
    tiny_mutator.sample(random.Random(0))
    choices = tiny_mutator.current_choices()
    static = tiny_mutator.export_static().eval()

    assert not any(is_dynamic(m) for m in static.modules())
    supernet_ptrs = {t.data_ptr() for t in tiny_net.state_dict().values()}
    for name, tensor in static.state_dict().items():
        assert tensor.untyped_storage().nbytes() == \
            tensor.numel() * tensor.element_size(), name
        assert tensor.data_ptr() not in supernet_ptrs, name
    assert static.expand.weight.shape == (choices['expand'],
                                          choices['stem'], 1, 1)
    assert static.dw.groups == choices['expand']
    assert static.fc_bn.num_features == choices['fc1']

    # the supernet is left as it was
    assert tiny_mutator.current_choices() == choices
    assert is_dynamic(tiny_net.stem)
    x = torch.randn(2, *TINY_INPUT_SHAPE)
    with torch.no_grad():
        torch.testing.assert_close(static(x), tiny_net(x), atol=1e-6, rtol=0)


def test_export_static_of_classifier_has_no_dynamic_layers(
        make_classifier, make_supernet):
    supernet = make_supernet(make_classifier('resnet18'))
    supernet.mutator.set_min()
    static = supernet.mutator.export_static()
    assert not any(is_dynamic(m) for m in static.modules())
    assert static is not supernet.architecture
    full = sum(p.numel() for p in supernet.architecture.parameters())
    assert sum(p.numel() for p in static.parameters()) < full / 10


def test_sync_batch_norm_model_prepares(make_supernet):
    """``norm_cfg=dict(type='SyncBN')`` is a common mmpretrain setting.

    Preparing such a model must not crash: SyncBN layers either become
    dynamic or keep their channels fixed with a warning.
    """
    model = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet_CIFAR', depth=18,
                      norm_cfg=dict(type='SyncBN')),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=512)))
    supernet = make_supernet(model)
    supernet.mutator.sample(random.Random(0))
    static = supernet.mutator.export_static().eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(static(x, mode='tensor'), supernet(x),
                                   atol=1e-5, rtol=0)


@pytest.fixture
def mbv2_half_mutator() -> ChannelMutator:
    """MobileNetV2 0.5x at 32x32 with AutoSlim-style divisor 8."""
    model = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='MobileNetV2', widen_factor=0.5),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=1280)))
    mutator = ChannelMutator(input_shape=(3, 32, 32), divisor=8,
                             min_width=8)
    mutator.prepare(model)
    return mutator


def test_uniform_choices_scale_every_group_alike(mbv2_half_mutator):
    mutator = mbv2_half_mutator
    half = mutator.uniform_choices(0.5, divisor=1)
    for group, width in mutator.max_widths.items():
        assert half[group] == max(8, int(width * 0.5 + 0.5)), group
    assert all(w % 8 == 0 for w in mutator.uniform_choices(0.5).values())
    assert mutator.uniform_choices(1.0) == mutator.max_widths


def test_uniform_for_budget_is_the_widest_under_the_budget(
        mbv2_half_mutator):
    mutator = mbv2_half_mutator
    budget = 0.7 * mutator.estimate(mutator.max_widths)['flops']
    ratio, choices = mutator.uniform_for_budget('flops', budget, divisor=1)
    flops = mutator.estimate(choices)['flops']
    assert flops <= budget
    assert flops > 0.99 * budget  # within 1% of the budget
    wider = mutator.uniform_choices(ratio + 0.01, divisor=1)
    assert mutator.estimate(wider)['flops'] > budget
    # uniform: every group within one channel of the common ratio
    common = mutator.uniform_choices(ratio, divisor=1)
    assert all(0 <= choices[g] - common[g] <= 1 for g in choices)
    with pytest.raises(BudgetError, match='below the narrowest uniform'):
        mutator.uniform_for_budget('flops', 1.0)


@pytest.mark.parametrize('fraction', [0.25, 0.35, 0.5, 0.7])
def test_uniform_for_budget_lands_within_one_percent(mbv2_half_mutator,
                                                     fraction):
    mutator = mbv2_half_mutator
    budget = fraction * mutator.estimate(mutator.max_widths)['flops']
    _, choices = mutator.uniform_for_budget('flops', budget, divisor=1)
    assert 0.99 * budget <= mutator.estimate(choices)['flops'] <= budget


@pytest.mark.parametrize('args, message', [
    (('latency_ms', 1e6), 'not estimated'),
    (('flops', float('nan')), 'not a positive finite'),
    (('flops', -5.0), 'not a positive finite'),
    (('flops', 1e6, 0), 'divisor 0'),
])
def test_uniform_for_budget_rejects_bad_input(mbv2_half_mutator, args,
                                              message):
    with pytest.raises(BudgetError, match=message):
        mbv2_half_mutator.uniform_for_budget(*args)


# ---------------------------------------------------------- channel_cfg meta
def _half(mutator: ChannelMutator) -> dict:
    return {g: max(1, w // 2) for g, w in mutator.max_widths.items()}


def test_meta_of_a_file_made_for_this_model_passes(tiny_mutator):
    cfg = tiny_mutator.channel_config(_half(tiny_mutator), 'm.py', 'test')
    assert tiny_mutator.meta_mismatches(cfg) == []
    tiny_mutator.strict_meta = True
    tiny_mutator.set_choices(cfg)  # no error


@pytest.mark.parametrize('change, named', [
    (dict(input_shape=[3, 32, 32]), 'made for input shape [3, 32, 32]'),
    (dict(params=1.0), 'its meta says params 1'),
    (dict(flops=1.0), 'its meta says flops 1'),
])
def test_meta_of_a_sibling_model_warns_or_fails_strictly(tiny_mutator, change,
                                                         named, monkeypatch):
    """Same group names, another model or input size: the meta tells."""
    cfg = tiny_mutator.channel_config(_half(tiny_mutator), 'm.py', 'test')
    cfg.meta.update(change)
    assert named in '; '.join(tiny_mutator.meta_mismatches(cfg))
    tiny_mutator.strict_meta = True
    with pytest.raises(ChannelConfigError, match='may be for another model'):
        tiny_mutator.set_choices(cfg)
    tiny_mutator.strict_meta = False
    warnings = []
    monkeypatch.setattr(MMLogger.get_current_instance(), 'warning',
                        warnings.append)
    tiny_mutator.set_choices(cfg)  # a warning, widths applied
    assert tiny_mutator.current_choices() == _half(tiny_mutator)
    assert len(warnings) == 1 and 'may be for another model' in warnings[0]
    tiny_mutator.set_choices(cfg)  # once per file
    assert len(warnings) == 1
