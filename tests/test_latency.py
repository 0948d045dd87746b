"""Latency lookup tables: measuring, storing, checking, estimating."""
import copy
import json
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from mmchansearch.errors import ConfigError, LatencyTableError
from mmchansearch.estimators import traced_macs
from mmchansearch.latency import (
    ChannelLatencyModel,
    LatencyTable,
    OpSpec,
    build_table,
    calibrate,
    channel_op_grids,
    channel_ops,
    measure_latency,
    measurement_meta,
)
from mmchansearch.mutator import ChannelMutator

REPO = Path(__file__).resolve().parents[1]


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


def test_measure_latency_is_positive():
    ms = measure_latency(nn.Conv2d(8, 8, 3, padding=1), (8, 16, 16),
                         warmup=1, repeats=3)
    assert ms > 0


def test_build_table_measures_each_signature_once():
    built = []

    def make():
        built.append(1)
        return nn.ReLU()

    ops = [OpSpec('relu:4', make, (4, )), OpSpec('relu:4', make, (4, )),
           OpSpec('relu:8', make, (8, ))]
    table = build_table(ops, warmup=0, repeats=2)
    assert sorted(table.entries) == ['relu:4', 'relu:8']
    assert len(built) == 2
    assert table.meta['device'] == 'cpu'
    assert table.meta['threads'] == torch.get_num_threads()
    assert table.meta['torch'] == torch.__version__
    # extending keeps measured entries
    again = build_table(ops + [OpSpec('relu:16', make, (16, ))],
                        warmup=0, repeats=2, table=table)
    assert again.entries['relu:4'] == table.entries['relu:4']
    assert len(built) == 3


def test_table_round_trip_and_checks(tmp_path):
    table = LatencyTable({'op:a': 1.5}, measurement_meta('cpu'))
    path = tmp_path / 'lut.json'
    table.save(path)
    loaded = LatencyTable.load(path, 'cpu')
    assert loaded.entries == {'op:a': 1.5}
    with pytest.raises(LatencyTableError, match="measured on 'cpu', not "
                       "'cuda'"):
        LatencyTable.load(path, 'cuda')
    other = LatencyTable({'op:a': 1.5}, dict(measurement_meta('cpu'),
                                             torch='1.0.0'))
    other.save(path)
    with pytest.warns(UserWarning, match='torch'):
        LatencyTable.load(path, 'cpu')


@pytest.mark.parametrize('text, needle', [
    ('{not json', 'not valid JSON'),
    ('[1, 2]', 'expected'),
    ('{"entries": {"op": -1}}', 'non-negative'),
])
def test_malformed_tables_are_refused(tmp_path, text, needle):
    path = tmp_path / 'lut.json'
    path.write_text(text)
    with pytest.raises(LatencyTableError, match=needle) as info:
        LatencyTable.load(path)
    assert 'build_latency_lut.py' in str(info.value)


def test_missing_table_and_missing_op_name_the_fix(tmp_path):
    with pytest.raises(LatencyTableError, match='no such file'):
        LatencyTable.load(tmp_path / 'none.json')
    table = LatencyTable({}, {'device': 'cpu'}, 'lut.json')
    with pytest.raises(LatencyTableError) as info:
        table['conv2d:3x8x8->4']
    assert "'conv2d:3x8x8->4'" in str(info.value)
    assert 'tools/build_latency_lut.py CONFIG --device cpu -o lut.json' in \
        str(info.value)


def test_channel_ops_cover_every_candidate_pair(mutator):
    grids = channel_op_grids(mutator)
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
    for op in channel_ops(mutator)[:10]:
        op.build()(torch.zeros(1, *op.input_shape))


def test_latency_of_a_choice_is_the_sum_of_its_layers_entries(mutator):
    table = _synthetic_table(channel_ops(mutator))
    model = ChannelLatencyModel(mutator, table)
    choices = mutator.sample()
    expected = 0.0
    for name, (ins, outs, ops) in channel_op_grids(mutator).items():
        info = mutator.analysis.layers[name]
        cout = choices.get(info.out_group, outs[-1]) if info.out_group \
            else outs[-1]
        cin = choices.get(info.in_group, ins[-1]) if info.in_group \
            else ins[-1]
        row = 0 if info.kind == 'dwconv' else ins.index(cin)
        expected += table[ops[row][outs.index(cout)].signature]
    assert float(model.latency(choices)) == pytest.approx(expected)


def test_latency_is_interpolated_and_differentiable(mutator):
    model = ChannelLatencyModel(mutator, _synthetic_table(
        channel_ops(mutator)))
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
    _synthetic_table(channel_ops(probe)).save(path)
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


def test_build_latency_lut_tool_for_a_channel_search(tmp_path, run_tool,
                                                     write_config):
    config = REPO / 'configs' / 'dmasking' / \
        'dmasking_mbv2_1.0x_search_1xb64_fashion-mnist.py'
    out = tmp_path / 'lut.json'
    result = run_tool('tools/build_latency_lut.py', config, '--device',
                      'cpu', '--warmup', '0', '--repeats', '1', '-o', out,
                      '--cfg-options', 'model.mutator.width_ratios=[0.5,1.0]',
                      'model.candidates=None', 'model.target=None')
    data = json.loads(out.read_text())
    assert data['meta']['device'] == 'cpu'
    assert data['meta']['repeats'] == 1
    assert f'{len(data["entries"])} distinct' in result.stdout
    # --update measures nothing new
    again = run_tool('tools/build_latency_lut.py', config, '--device', 'cpu',
                     '--warmup', '0', '--repeats', '1', '--update', '-o', out,
                     '--cfg-options', 'model.mutator.width_ratios=[0.5,1.0]',
                     'model.candidates=None', 'model.target=None')
    assert json.loads(out.read_text())['entries'] == data['entries']
    assert 'wrote' in again.stdout
    # without --update a measured table is never replaced
    before = out.read_bytes()
    refused = run_tool('tools/build_latency_lut.py', config, '--device',
                       'cpu', '-o', out, check=False)
    assert refused.returncode == 2
    assert 'exists (a measured table); --update keeps' in refused.stderr
    assert out.read_bytes() == before
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        bad = run_tool('tools/build_latency_lut.py', config, '--device',
                       'cuda', '-o', tmp_path / 'x.json', check=False)
    if not torch.cuda.is_available():
        assert bad.returncode != 0
        assert 'no CUDA device' in bad.stderr + bad.stdout


def test_calibration_scales_every_lookup():
    table = LatencyTable({'a': 1.0, 'b': 3.0}, measurement_meta('cpu'))
    net = nn.Sequential(nn.Conv2d(3, 4, 3))
    # predictions of 1 ms and 2 ms for networks of equal real latency:
    # the scale is the median of measured / predicted
    networks = [(net, lambda t: t['a']), (net, lambda t: t['a'] * 2),
                (net, lambda t: t['a'] * 4)]
    calibrate(table, networks, (3, 8, 8), warmup=1, repeats=3)
    ratios = table.meta['calibration_ratios']
    assert len(ratios) == 3
    assert table.scale == pytest.approx(sorted(ratios)[1], abs=1e-4)
    assert table['b'] == pytest.approx(3.0 * table.scale)
    assert table.latency(['a', 'b']) == pytest.approx(4.0 * table.scale)


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a CPU-only host')
def test_a_cuda_table_on_a_cpu_only_host_is_a_clear_error(tmp_path):
    path = tmp_path / 'lut.json'
    path.write_text(json.dumps(dict(meta=dict(device='cuda'),
                                    entries={'a': 1.0})))
    with pytest.raises(ConfigError, match='no CUDA device is available'):
        LatencyTable.load(path, 'cuda')


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
    grids = channel_op_grids(mutator)
    for name, size in out_sizes.items():
        for row in grids[name][2]:
            for op in row:
                out = op.build()(torch.zeros(1, *op.input_shape))
                assert tuple(out.shape[-2:]) == size, (name, op.signature)
                assert 'Conv2dAdaptivePadding' in op.signature
