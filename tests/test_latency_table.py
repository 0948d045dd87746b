"""Latency lookup tables: measuring, storing, checking, calibrating."""
import json
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from mmchansearch.errors import ConfigError, LatencyTableError
from mmchansearch.latency_table import (
    LatencyTable,
    OpSpec,
    build_table,
    calibrate,
    measure_latency,
    measurement_meta,
)

REPO = Path(__file__).resolve().parents[1]


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
