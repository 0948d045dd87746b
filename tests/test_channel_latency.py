"""The latency of channel choices: op grids and the latency model, built
from plain data (analysis, candidate widths, model, input shapes)."""
import copy

import pytest
import torch
from torch import nn

from mmchansearch.analysis import analyze_channels, forward_logits
from mmchansearch.channel_latency import (
    ChannelLatencyModel,
    channel_op_grids,
    channel_ops,
)
from mmchansearch.errors import LatencyTableError
from mmchansearch.estimators import traced_macs
from mmchansearch.latency_table import (
    LatencyTable,
    measurement_meta,
    record_input_shapes,
)
from mmchansearch.mutator import ChannelMutator


def _space(mutator: ChannelMutator) -> tuple:
    """The plain data the channel-latency functions take, as a prepared
    mutator holds it: analysis, model, candidate widths, input shapes."""
    return (mutator.analysis, mutator.model, mutator.candidate_widths,
            mutator.layer_input_shapes)


def _synthetic_table(ops) -> LatencyTable:
    """A table of made-up latencies growing with each op's MACs, distinct
    per signature."""
    entries = {}
    for i, op in enumerate({op.signature: op for op in ops}.values()):
        module, sample = op.build(), torch.zeros(1, *op.input_shape)
        macs = sum(traced_macs(module, lambda m=module, x=sample: m(
            x)).values())
        entries[op.signature] = 1e-4 * macs + 1e-3 * (i + 1)
    return LatencyTable(entries, measurement_meta('cpu'))


@pytest.fixture
def mutator(tiny_net) -> ChannelMutator:
    mutator = ChannelMutator(input_shape=(3, 16, 16),
                             width_ratios=[0.5, 0.75, 1.0])
    mutator.prepare(tiny_net)
    return mutator


def test_channel_ops_cover_every_candidate_pair(mutator):
    grids = channel_op_grids(*_space(mutator))
    layers = {n for n, i in mutator.analysis.layers.items()
              if i.kind != 'bn'}
    assert set(grids) == layers
    for name, (ins, outs, ops) in grids.items():
        info = mutator.analysis.layers[name]
        if info.out_group:
            assert outs == mutator.candidates(info.out_group)
        if info.kind not in ('dwconv', ) and info.in_group:
            assert ins == mutator.candidates(info.in_group)
        assert len(ops) == len(ins) and all(len(r) == len(outs) for r in ops)
    # every op builds and runs at its shape
    for op in channel_ops(*_space(mutator))[:10]:
        op.build()(torch.zeros(1, *op.input_shape))


def test_latency_of_a_choice_is_the_sum_of_its_layers_entries(mutator):
    table = _synthetic_table(channel_ops(*_space(mutator)))
    model = ChannelLatencyModel(*_space(mutator), table)
    choices = mutator.sample()
    expected = 0.0
    for name, (ins, outs, ops) in channel_op_grids(
            *_space(mutator)).items():
        info = mutator.analysis.layers[name]
        cout = choices.get(info.out_group, outs[-1]) if info.out_group \
            else outs[-1]
        cin = choices.get(info.in_group, ins[-1]) if info.in_group \
            else ins[-1]
        row = 0 if info.kind == 'dwconv' else ins.index(cin)
        expected += table[ops[row][outs.index(cout)].signature]
    assert float(model.latency(choices)) == pytest.approx(expected)


def test_latency_is_interpolated_and_differentiable(mutator):
    model = ChannelLatencyModel(*_space(mutator), _synthetic_table(
        channel_ops(*_space(mutator))))
    group = mutator.searchable_groups[0]
    low, high = mutator.candidates(group)[:2]
    base = mutator.max_widths
    at_low = float(model.latency({**base, group: low}))
    at_high = float(model.latency({**base, group: high}))
    width = torch.tensor((low + high) / 2, requires_grad=True)
    mid = model.latency({**base, group: width})
    assert float(mid.detach()) == pytest.approx((at_low + at_high) / 2)
    mid.backward()
    assert width.grad is not None and float(width.grad) != 0


def test_mutator_with_a_table_estimates_latency(tiny_net, tmp_path):
    fresh = copy.deepcopy(tiny_net)
    probe = ChannelMutator(input_shape=(3, 16, 16),
                           width_ratios=[0.5, 1.0])
    probe.prepare(tiny_net)
    path = tmp_path / 'lut.json'
    _synthetic_table(probe.latency_ops()).save(path)
    mutator = ChannelMutator(input_shape=(3, 16, 16),
                             width_ratios=[0.5, 1.0],
                             latency_table=str(path))
    mutator.prepare(fresh)
    assert 'latency' in mutator.estimator.metrics
    widest = mutator.estimate(mutator.max_widths)['latency']
    narrow = mutator.estimate(mutator.uniform_choices(0.5))['latency']
    assert narrow < widest
    budget = (widest + narrow) / 2
    ratio, choices = mutator.uniform_for_budget('latency', budget)
    assert 0.5 < ratio < 1
    assert mutator.estimate(choices)['latency'] <= budget


def test_mutator_refuses_a_table_of_other_widths(tiny_net, tmp_path):
    path = tmp_path / 'lut.json'
    LatencyTable({'op': 1.0}, measurement_meta('cpu')).save(path)
    mutator = ChannelMutator(input_shape=(3, 16, 16),
                             latency_table=str(path))
    with pytest.raises(LatencyTableError, match='has no entry for op'):
        mutator.prepare(tiny_net)


def test_an_adaptive_padding_conv_is_timed_with_its_own_padding():
    """mmcv's Conv2dAdaptivePadding pads to TF's 'same' output size in its
    forward (its ``padding`` attribute is 0): the timed op must be that
    layer, whose output has the real layer's size, not an unpadded conv."""
    from mmcv.cnn.bricks import conv2d_adaptive_padding
    Conv2dAdaptivePadding = conv2d_adaptive_padding.Conv2dAdaptivePadding
    net = nn.Sequential(
        Conv2dAdaptivePadding(3, 16, 3, stride=2), nn.BatchNorm2d(16),
        nn.ReLU(), Conv2dAdaptivePadding(16, 16, 5, groups=16),
        nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(16, 4))
    reference = copy.deepcopy(net)
    mutator = ChannelMutator(input_shape=(3, 15, 15),
                             width_ratios=[0.5, 1.0])
    mutator.prepare(net)
    out_sizes = {name: tuple(reference.get_submodule(name)(x).shape[-2:])
                 for name, x in (
                     ('0', torch.zeros(1, 3, 15, 15)),
                     ('3', torch.zeros(1, 16, 8, 8)))}
    grids = channel_op_grids(*_space(mutator))
    for name, size in out_sizes.items():
        for row in grids[name][2]:
            for op in row:
                out = op.build()(torch.zeros(1, *op.input_shape))
                assert tuple(out.shape[-2:]) == size, (name, op.signature)
                assert 'Conv2dAdaptivePadding' in op.signature


def test_grids_come_from_plain_data_without_a_mutator(tiny_net):
    """The analysis of the static model, its input shapes and candidate
    widths give the supernet's ops: the mutator only passes them on."""
    static = copy.deepcopy(tiny_net)
    mutator = ChannelMutator(input_shape=(3, 16, 16),
                             width_ratios=[0.5, 1.0])
    mutator.prepare(tiny_net)
    analysis = analyze_channels(static, (3, 16, 16))
    layers = {name: static.get_submodule(name)
              for name, info in analysis.layers.items() if info.kind != 'bn'}
    with torch.no_grad():
        shapes = record_input_shapes(
            layers, lambda: forward_logits(static, torch.zeros(1, 3, 16,
                                                              16)))
    assert shapes == mutator.layer_input_shapes
    assert [op.signature for op in channel_ops(
        analysis, static, mutator.candidate_widths, shapes)] == [
            op.signature for op in mutator.latency_ops()]


def test_latency_at_any_widths_runs_nothing_and_changes_nothing(mutator):
    """Ops and the latency model come from the shapes recorded by
    ``prepare``: building them at other current widths runs no forward,
    leaves the widths as they are and gives the ops of the max widths."""
    at_max = [op.signature for op in mutator.latency_ops()]
    table = _synthetic_table(mutator.latency_ops())
    expected = float(mutator.latency_model(table).latency(
        mutator.uniform_choices(0.5)))
    choices = mutator.sample()
    calls = []
    handle = mutator.model.register_forward_pre_hook(
        lambda *args: calls.append(1))
    try:
        assert [op.signature for op in mutator.latency_ops()] == at_max
        model = mutator.latency_model(table)
    finally:
        handle.remove()
    assert calls == []
    assert mutator.current_choices() == choices
    assert float(model.latency(mutator.uniform_choices(0.5))) == expected
