"""FLOPs Utilization Ratio measurement (Network Adjustment)."""
import pytest
import torch
from mmpretrain.structures import DataSample

from mmchansearch.channel_masks import GroupMasks
from mmchansearch.engine.flops_utilization import (
    ChannelDropout,
    UtilizationMeter,
    dropout_rates,
    flops_utilization,
    group_flops,
)
from mmchansearch.errors import ConfigError
from mmchansearch.models.algorithms import ChannelSupernet
from mmchansearch.mutator import ChannelMutator


@pytest.fixture(scope='module')
def supernet(randomize_bn, quarter_resnet_cfg):
    torch.manual_seed(0)
    model = ChannelSupernet(quarter_resnet_cfg, ChannelMutator(
        input_shape=(3, 32, 32), divisor=8, min_width=8, width_cap=2.0))
    randomize_bn(model)
    model.mutator.set_choices(model.mutator.original_widths)
    return model.eval()


def _batches(count: int = 2, size: int = 16) -> list[dict]:
    gen = torch.Generator().manual_seed(1)
    return [dict(inputs=[torch.randint(0, 255, (3, 32, 32), generator=gen,
                                       dtype=torch.uint8)
                         for _ in range(size)],
                 data_samples=[DataSample().set_gt_label(i % 10)
                               for i in range(size)])
            for _ in range(count)]


def _measure(model, reuse: bool, groups=None, metric='loss'):
    mutator = model.mutator
    dropout = ChannelDropout(repeats=2)
    _, share = group_flops(mutator, mutator.current_choices())
    rates = dropout_rates(dropout, share)
    meter = UtilizationMeter(model, mutator, dropout, metric,
                             reuse_prefix=reuse)
    return meter.measure(_batches(), groups or mutator.searchable_groups,
                         rates), rates


def test_channels_that_do_not_reach_the_output_have_zero_fur(supernet):
    dead, alive = 'backbone.layer1.0.conv1', 'backbone.layer4.0.conv1'
    consumer = supernet.architecture.backbone.layer1[0].conv2
    saved = consumer.weight.detach().clone()
    with torch.no_grad():
        consumer.weight.zero_()  # the only reader of `dead`
    try:
        result, rates = _measure(supernet, reuse=True, groups=[dead, alive])
    finally:
        with torch.no_grad():
            consumer.weight.copy_(saved)
    per_channel, _ = group_flops(supernet.mutator,
                                 supernet.mutator.current_choices())
    fur = flops_utilization(result.damage, rates,
                            supernet.mutator.current_choices(), per_channel)
    assert fur[dead] == pytest.approx(0.0, abs=1e-9)
    assert abs(fur[alive]) > 1e-6


def test_prefix_reuse_gives_the_same_damage_for_fewer_passes(supernet):
    naive, _ = _measure(supernet, reuse=False)
    reused, _ = _measure(supernet, reuse=True)
    assert reused.accuracy == naive.accuracy
    assert reused.loss == pytest.approx(naive.loss)
    for group, damage in naive.damage.items():
        assert reused.damage[group] == pytest.approx(damage, abs=1e-6)
    assert naive.passes == naive.naive_passes == 1 + 12 * 2
    assert reused.passes < 0.8 * naive.passes


def test_dropout_masks_every_reader_of_a_residual_group(supernet):
    group = 'backbone.layer2.0.conv2'  # layer2's residual channels
    mutator = supernet.mutator
    width = mutator.current_choices()[group]
    mask = torch.ones(2, width)
    mask[:, :width // 2] = 0
    readers = [name for name, info in mutator.analysis.layers.items()
               if info.in_group == group and info.kind != 'bn']
    seen = {}
    with torch.no_grad(), GroupMasks(supernet.architecture, mutator.analysis,
                                     [group]) as masks:
        masks.masks[group] = mask
        # registered after the masking hooks, so these see masked inputs
        hooks = [supernet.architecture.get_submodule(name)
                 .register_forward_pre_hook(
                     lambda _, args, name=name: seen.update(
                         {name: (args[0][:, :width // 2].abs().sum(),
                                 args[0][:, width // 2:].abs().sum())}))
                 for name in readers]
        supernet.architecture(torch.randn(2, 3, 32, 32), mode='tensor')
    for hook in hooks:
        hook.remove()
    # layer2.1.conv1 and the two readers in layer3.0 (conv1, downsample)
    assert len(readers) == 3 and set(seen) == set(readers)
    assert all(dropped == 0 and kept > 0 for dropped, kept in seen.values())


def test_flops_scaled_rates_drop_equal_expected_flops():
    dropout = ChannelDropout(rate=0.1, max_rate=0.9)
    rates = dropout_rates(dropout, {'a': 100.0, 'b': 300.0})
    assert rates['a'] * 100 == pytest.approx(rates['b'] * 300)
    assert dropout_rates(ChannelDropout(rate=0.1, scale_by_flops=False),
                         {'a': 1.0, 'b': 3.0}) == {'a': 0.1, 'b': 0.1}


def test_gaussian_and_bernoulli_masks_have_mean_one():
    gen = torch.Generator().manual_seed(0)
    for kind in ('bernoulli', 'gaussian'):
        mask = ChannelDropout(kind=kind).mask(0.2, (400, 400), gen)
        assert mask.mean().item() == pytest.approx(1.0, abs=0.01)
    bernoulli = ChannelDropout().mask(0.2, (100, 100), gen)
    assert set(bernoulli.unique().tolist()) == {0.0, 1.25}


@pytest.mark.parametrize('kwargs, needle', [
    (dict(kind='uniform'), 'dropout kind'),
    (dict(rate=1.5), 'rate'),
    (dict(repeats=0), 'repeats'),
])
def test_bad_dropout_settings_are_refused(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        ChannelDropout(**kwargs)


def test_unknown_metric_is_refused(supernet):
    with pytest.raises(ConfigError, match='metric'):
        UtilizationMeter(supernet, supernet.mutator, ChannelDropout(),
                         metric='f1')
