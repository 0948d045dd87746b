"""FLOPs Utilization Ratio measurement (Network Adjustment)."""
import pytest
import torch
from mmpretrain.structures import DataSample

from mmchansearch.channel_masks import GroupMasks
from mmchansearch.engine.flops_utilization import (
    ChannelDropout,
    OutputMasks,
    TrainingDropout,
    UtilizationMeter,
    dropout_rates,
    flops_utilization,
    group_flops,
    group_outputs,
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


def _measure(model, reuse: bool, groups=None, metric='loss',
             drop_at='readers'):
    mutator = model.mutator
    dropout = ChannelDropout(repeats=2)
    _, share = group_flops(mutator, mutator.current_choices())
    rates = dropout_rates(dropout, share)
    meter = UtilizationMeter(model, mutator, dropout, metric,
                             reuse_prefix=reuse, drop_at=drop_at)
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


@pytest.mark.parametrize('drop_at', ['readers', 'outputs'])
def test_prefix_reuse_gives_the_same_damage_for_fewer_passes(supernet,
                                                              drop_at):
    naive, _ = _measure(supernet, reuse=False, drop_at=drop_at)
    reused, _ = _measure(supernet, reuse=True, drop_at=drop_at)
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


# ------------------------------------------- the paper's dropout sites
def test_output_sites_are_inside_the_branches(supernet):
    """A group inside a block is dropped after its own layer's batch norm;
    a residual-stream group at the stem's and every branch's output
    (the batch norms before the additions), not at its readers."""
    analysis = supernet.mutator.analysis
    assert group_outputs(analysis, 'backbone.layer1.0.conv1') == [
        'backbone.layer1.0.bn1']
    assert group_outputs(analysis, 'backbone.layer2.0.conv2') == [
        'backbone.layer2.0.bn2', 'backbone.layer2.0.downsample.1',
        'backbone.layer2.1.bn2']
    assert group_outputs(analysis, 'backbone.conv1') == [
        'backbone.bn1', 'backbone.layer1.0.bn2', 'backbone.layer1.1.bn2']


def _stream(supernet, masks_cls=None, group=None, mask=None):
    """The residual stream before and after layer2.1 (the inputs of
    layer2.1.conv1 and layer3.0.conv1), with ``mask`` on ``group``."""
    arch, analysis = supernet.architecture, supernet.mutator.analysis
    seen = {}
    hooks = [arch.get_submodule(name).register_forward_pre_hook(
        lambda _, args, name=name: seen.update({name: args[0].clone()}))
        for name in ('backbone.layer2.1.conv1', 'backbone.layer3.0.conv1')]
    torch.manual_seed(3)
    inputs = torch.randn(2, 3, 32, 32)
    try:
        with torch.no_grad():
            if masks_cls is None:
                arch(inputs, mode='tensor')
            else:
                with masks_cls(arch, analysis, [group]) as masks:
                    masks.masks[group] = mask(masks)
                    arch(inputs, mode='tensor')
    finally:
        for hook in hooks:
            hook.remove()
    return seen['backbone.layer2.1.conv1'], seen['backbone.layer3.0.conv1']


def test_output_masks_drop_the_branch_not_the_stream(supernet):
    """Zeroing half of layer2's residual channels at layer2.1's branch
    output only: after layer2.1 those channels are exactly its identity
    input (ReLU of stream + 0), the other half is the clean network's.
    (The reader masks zero a channel everywhere: the test above.)"""
    group = 'backbone.layer2.0.conv2'
    width = supernet.mutator.current_choices()[group]
    ones, half = torch.ones(2, width), torch.ones(2, width)
    half[:, :width // 2] = 0
    _, clean = _stream(supernet)
    before, after = _stream(supernet, OutputMasks, group,
                            lambda m: [ones, ones, half])
    assert torch.equal(after[:, :width // 2], before[:, :width // 2])
    assert not torch.allclose(after[:, :width // 2], clean[:, :width // 2])
    assert torch.allclose(after[:, width // 2:], clean[:, width // 2:])


def _site_outputs(supernet, dropout, train: bool) -> dict:
    arch = supernet.architecture
    seen = {}
    # registered after the dropout hooks, so they see dropped outputs
    hooks = [arch.get_submodule(name).register_forward_hook(
        lambda _, __, out, name=name: seen.update({name: out.clone()}))
        for name in dropout.rates]
    arch.train(train)
    torch.manual_seed(5)
    try:
        with torch.no_grad():
            arch(torch.randn(64, 3, 32, 32), mode='tensor')
    finally:
        for hook in hooks:
            hook.remove()
        arch.eval()
    return seen


def test_training_dropout_is_on_in_training_and_off_in_eval(supernet):
    """Rate 0.05 without ramps: about 5% of every site's (sample, channel)
    outputs are zero in training mode, the rest scaled by 1/0.95 relative
    to the undropped network; eval mode is the undropped network."""
    mutator = supernet.mutator
    saved = {k: v.clone() for k, v in supernet.state_dict().items()}
    plain = _site_outputs(supernet, TrainingDropout(
        supernet.architecture, mutator.analysis, mutator.searchable_groups,
        0.0), train=True)
    supernet.load_state_dict(saved)  # BN running stats
    with TrainingDropout(supernet.architecture, mutator.analysis,
                         mutator.searchable_groups, 0.05,
                         ramp_progress=False, ramp_layers=False) as dropout:
        assert set(dropout.rates.values()) == {0.05}
        # the stem's site sees the stem's output only (no earlier dropout)
        trained = _site_outputs(supernet, dropout, train=True)
        supernet.load_state_dict(saved)
        evaluated = _site_outputs(supernet, dropout, train=False)
    supernet.load_state_dict(saved)
    reference = _site_outputs(supernet, TrainingDropout(
        supernet.architecture, mutator.analysis, mutator.searchable_groups,
        0.0), train=False)
    for name in dropout.rates:
        assert torch.equal(evaluated[name], reference[name])
    first = 'backbone.bn1'
    out, clean = trained[first], plain[first]
    zero = (out == 0).flatten(2).all(-1) & (clean != 0).flatten(2).any(-1)
    assert 0.02 < zero.float().mean().item() < 0.09
    kept = ~zero
    assert torch.allclose(out[kept], clean[kept] / 0.95, atol=1e-5)
    drops = sum((o == 0).flatten(2).all(-1).float().mean().item()
                for o in trained.values()) / len(trained)
    assert 0.03 < drops < 0.08


def test_training_dropout_ramps_and_repeats(supernet):
    """Rates ramp with the layer (k + 1) / L and the progress i / n (none
    at iteration 0); the same iteration draws the same masks (a resumed
    training drops what the uninterrupted one dropped)."""
    mutator = supernet.mutator
    clock = [0, 10]
    with TrainingDropout(supernet.architecture, mutator.analysis,
                         mutator.searchable_groups, 0.05,
                         clock=lambda: tuple(clock)) as dropout:
        names = list(dropout.rates)
        assert dropout.rates[names[-1]] == pytest.approx(0.05)
        assert dropout.rates[names[0]] == pytest.approx(0.05 / len(names))
        assert dropout.site_rate(names[-1]) == 0
        clock[0] = 5
        assert dropout.site_rate(names[-1]) == pytest.approx(0.025)
        clock[0] = 10
        saved = {k: v.clone() for k, v in supernet.state_dict().items()}
        first = _site_outputs(supernet, dropout, train=True)
        supernet.load_state_dict(saved)
        again = _site_outputs(supernet, dropout, train=True)
        supernet.load_state_dict(saved)
    for name in names:
        assert torch.equal(first[name], again[name])
    with pytest.raises(ConfigError, match='training dropout rate'):
        TrainingDropout(supernet.architecture, mutator.analysis,
                        mutator.searchable_groups, 1.0)
