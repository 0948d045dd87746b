"""tools/compare.py: derived configs, the compared methods, measurements,
the table, and the reduced comparison end to end on tiny data."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from torch import nn

from mmchansearch.comparison import (
    ComparisonRow,
    NetworkCosts,
    ToolRunner,
    comparison_table,
    derive_config,
    measure_networks,
    plot_comparison,
)
from mmchansearch.comparison.methods import NetworkAdjustmentRun, ReXNetRun
from mmchansearch.errors import ConfigError
from mmchansearch.latency_table import (
    LatencyTable,
    measure_latencies,
    network_ops,
)
from mmchansearch.registry import COMPARED_METHODS
from mmchansearch.tool_runs import tool_path

REDUCED = 'configs/compare/fashion_mnist_reduced.py'
FULL = 'configs/compare/fashion_mnist.py'


def test_derive_config_merges_in_turn_and_sets_data_root(tmp_path):
    source = tmp_path / 'a.py'
    source.write_text("train = dict(dataset=dict(type='X', data_root='d', "
                      "n=1), batch=8)\nlr = 0.1\n")
    out = derive_config(str(source), [
        dict(train=dict(batch=16)),
        None,
        dict(train=dict(dataset=dict(_delete_=True, type='Y',
                                     data_root='e'))),
    ], str(tmp_path / 'out' / 'b.py'), data_root='/data')
    cfg = Config.fromfile(out)
    assert cfg.train == dict(dataset=dict(type='Y', data_root='/data'),
                             batch=16)
    assert cfg.lr == 0.1


def test_derive_config_names_a_missing_file(tmp_path):
    with pytest.raises(ConfigError, match='no such file'):
        derive_config(str(tmp_path / 'nope.py'), [], str(tmp_path / 'o.py'))


def test_methods_refuse_an_unsupported_budget():
    with pytest.raises(ConfigError, match="FLOPs budget only"):
        NetworkAdjustmentRun('NA', 's.py', 'r.py', budget='latency')
    with pytest.raises(ConfigError, match='budget must be one of'):
        COMPARED_METHODS.build(dict(type='dmasking', name='D',
                                    search='s.py', retrain='r.py',
                                    budget='params'))
    with pytest.raises(ConfigError, match='window'):
        ReXNetRun('R', 's.py', 'r.py', window=1.5)


def test_every_method_of_the_configs_builds():
    for path in (FULL, REDUCED):
        cfg = Config.fromfile(path)
        methods = [COMPARED_METHODS.build(m)
                   for m in [cfg.baseline, *cfg.methods.values()]]
        assert [type(m).__name__ for m in methods] == [
            'UniformWidthRun', 'AutoSlimRun', 'NetworkAdjustmentRun',
            'ReXNetRun', 'DMaskingNASRun', 'DNASRun']
        assert [cfg.baseline.type, *(m.type for m in cfg.methods.values())
                ] == ['uniform', *cfg.methods]  # type = key = method name


def test_tool_runner_finds_the_tools_from_another_directory(tmp_path,
                                                           monkeypatch):
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(repo)
    assert tool_path('tools/train.py') == 'tools/train.py'  # from the repo
    monkeypatch.chdir(tmp_path)
    assert tool_path('tools/train.py') == str(repo / 'tools' / 'train.py')
    (tmp_path / 'tools').mkdir()
    (tmp_path / 'tools' / 'train.py').write_text('')
    assert tool_path('tools/train.py') == 'tools/train.py'  # the cwd's own
    with pytest.raises(ConfigError, match='tools/none.py not found'):
        tool_path('tools/none.py')


def test_tool_runner_records_stages_and_skips_finished_ones(tmp_path):
    script = tmp_path / 'count.py'
    script.write_text(f"open(r'{tmp_path / 'runs'}', 'a').write('x')\n")
    runner = ToolRunner(str(tmp_path / 'w'))
    runner.run('stage', script)
    ToolRunner(str(tmp_path / 'w')).run('stage', script)  # resumed
    assert (tmp_path / 'runs').read_text() == 'x'
    assert json.loads((tmp_path / 'w' / 'stages.json').read_text()).keys() \
        == {'stage'}
    failing = tmp_path / 'fail.py'
    failing.write_text("print('the reason'); raise SystemExit(3)\n")
    with pytest.raises(ConfigError, match='(?s)exit 3.*the reason'):
        runner.run('broken', failing)
    assert not runner.done('broken')


def test_tool_runner_refuses_a_finished_stage_with_other_arguments(
        tmp_path):
    script = tmp_path / 'count.py'
    script.write_text(f"open(r'{tmp_path / 'runs'}', 'a').write('x')\n")
    ToolRunner(str(tmp_path / 'w')).run('stage', script, '--seed', 0)
    with pytest.raises(ConfigError, match='other arguments'):
        ToolRunner(str(tmp_path / 'w')).run('stage', script, '--seed', 1)
    assert (tmp_path / 'runs').read_text() == 'x'
    recorded = json.loads((tmp_path / 'w' / 'stages.json').read_text())
    assert recorded['stage']['command'] == [str(script), '--seed', '0']


def test_tool_runner_echoes_the_output(tmp_path, capsys):
    script = tmp_path / 'talk.py'
    script.write_text("print('progress line')\n")
    ToolRunner(str(tmp_path / 'w'), echo=True).run('talk', script)
    assert 'progress line' in capsys.readouterr().out
    assert 'progress line' in (tmp_path / 'w' / 'talk.log').read_text()


class TwoBranch(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.dw = nn.Conv2d(width, width, 3, padding=1, groups=width)
        self.fc = nn.Linear(width, 10)

    def forward(self, x):
        return self.fc(self.dw(self.conv(x)).mean((2, 3)))


def test_network_ops_cover_every_conv_and_linear():
    ops = network_ops(TwoBranch(8), (3, 16, 16))
    assert [op.input_shape for op in ops] == [(3, 16, 16), (8, 16, 16),
                                              (8, )]
    assert ':g8:' in ops[1].signature
    for op in ops:  # each op runs at its recorded shape
        op.build()(torch.zeros(1, *op.input_shape))


def test_measure_networks_counts_flops_and_predicts_latency(
        tmp_path, count_flops):
    nets = {'base': TwoBranch(8), 'wide': TwoBranch(16)}
    table_path = str(tmp_path / 'lut.json')
    costs = measure_networks(nets, (3, 16, 16), table_path, 'base',
                             repeats=3, rounds=2)
    table = LatencyTable.load(table_path, 'cpu')
    for name, net in nets.items():
        c = costs[name]
        assert c.flops == count_flops(net, torch.zeros(1, 3, 16, 16))
        assert c.params == sum(p.numel() for p in net.parameters())
        assert c.lut_ms == pytest.approx(table.latency(
            op.signature for op in network_ops(net, (3, 16, 16))))
        assert c.measured_ms > 0
    assert len(table.meta["calibration_ratios"]) == 1


def test_table_and_plot(tmp_path):
    rows = [ComparisonRow('uniform', 'flops', NetworkCosts(3e6, 2e5, 1.5,
                                                           1.6), [80, 82],
                          0.0),
            ComparisonRow('DNAS', 'latency', NetworkCosts(2.9e6, 1e5, 1.2,
                                                          1.3), [83.5],
                          12.34)]
    table = comparison_table(rows).splitlines()
    assert len(table) == 4
    assert table[2] == ('| uniform | flops | 3.00 | 0.200 | 1.500 | 1.600 '
                        '| 81.00 +- 1.41 | 0.0 |')
    assert table[3].endswith('| 83.50 +- 0.00 | 12.3 |')
    plot_comparison(rows, str(tmp_path / 'p.png'))
    assert (tmp_path / 'p.png').stat().st_size > 0


def test_reduced_comparison_end_to_end(tmp_path, make_fashion_mnist,
                                       run_tool):
    data = make_fashion_mnist(tmp_path / 'fashion', 800, 1000)
    work = tmp_path / 'compare'
    # one retraining seed (the config's two only repeat the same stages;
    # mean +- std of several is test_table_and_plot's)
    args = ('tools/compare.py', REDUCED, '--work-dir', work,
            '--cfg-options', f'data_root={data}', 'retrain.seeds=[0]')
    run_tool(*args)
    results = json.loads((work / 'results.json').read_text())
    rows = {r['name']: r for r in results['rows']}
    assert list(rows) == ['uniform MobileNetV2', 'AutoSlim',
                          'Network Adjustment', 'ReXNet', 'DMaskingNAS',
                          'FBNet DNAS']
    budget = results['budget']
    assert budget['flops'] == 3e6 and budget['latency'] > 0
    tolerance = Config.fromfile(REDUCED).tolerance
    for row in rows.values():
        assert len(row['top1']) == 1 and row['measured_ms'] > 0
        if row['budget'] == 'flops':
            assert row['flops'] <= (1 + tolerance) * budget['flops']
    assert rows['ReXNet']['flops'] >= 0.9 * budget['flops'] * 0.99
    assert rows['FBNet DNAS']['budget'] == 'latency'
    assert rows['uniform MobileNetV2']['search_minutes'] == 0
    assert all(rows[n]['search_minutes'] > 0 for n in list(rows)[1:])
    table = (work / 'compare.md').read_text()
    assert table.count('\n| ') == 7  # header + 6 networks
    assert (work / 'accuracy_flops.png').is_file()
    # run again: every stage is done, nothing is retrained
    stages = (work / 'autoslim' / 'retrain' / 'stages.json').read_text()
    run_tool(*args)
    assert (work / 'autoslim' / 'retrain' / 'stages.json').read_text() \
        == stages
    again = json.loads((work / 'results.json').read_text())
    assert [r['top1'] for r in again['rows']] == \
        [r['top1'] for r in results['rows']]


def test_unknown_method_key_is_a_clear_error(tmp_path, run_tool):
    result = run_tool('tools/compare.py', REDUCED, '--work-dir', tmp_path,
                      '--methods', 'autoslim', 'nas', check=False)
    assert result.returncode == 2
    assert "--methods ['nas']: not in the config's methods" in result.stderr


def test_methods_with_one_name_are_refused(tmp_path, run_tool):
    result = run_tool('tools/compare.py', REDUCED, '--work-dir', tmp_path,
                      '--cfg-options', 'methods.rexnet.name=AutoSlim',
                      check=False)
    assert result.returncode == 2
    assert 'two methods have the same name' in result.stderr


def test_measure_latencies_alternates_rounds():
    calls = []

    class Recorder(nn.Module):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        def forward(self, x):
            calls.append(self.name)
            return x

    times = measure_latencies(dict(a=Recorder('a'), b=Recorder('b')),
                              (3, ), rounds=3, warmup=1, repeats=2)
    assert set(times) == {'a', 'b'} and all(t > 0 for t in times.values())
    assert calls == (['a'] * 3 + ['b'] * 3) * 3  # a, b in turn, 3 rounds


def test_tool_runner_refuses_a_finished_stage_whose_config_changed(
        tmp_path):
    """Same command, but the config (or a file it inherits) changed: the
    finished stage is stale and is not reused."""
    script = tmp_path / 'count.py'
    script.write_text(f"open(r'{tmp_path / 'runs'}', 'a').write('x')\n")
    base = tmp_path / 'base.py'
    base.write_text('lr = 0.1\n')
    config = tmp_path / 'config.py'
    config.write_text("_base_ = ['./base.py']\nepochs = 3\n")
    ToolRunner(str(tmp_path / 'w')).run('stage', script, config)
    ToolRunner(str(tmp_path / 'w')).run('stage', script, config)  # same
    base.write_text('lr = 0.2\n')
    with pytest.raises(ConfigError, match='another version of .*config.py'):
        ToolRunner(str(tmp_path / 'w')).run('stage', script, config)
    assert (tmp_path / 'runs').read_text() == 'x'


def test_processes_sharing_a_work_dir_run_a_stage_once(tmp_path):
    """Two jobs on one work dir (compare.py --methods A / --methods B):
    the shared stage runs once, the other job waits for it, and neither
    loses the other's records."""
    import textwrap
    script = tmp_path / 'slow.py'
    script.write_text(textwrap.dedent(f"""
        import time
        open(r'{tmp_path / 'runs'}', 'a').write('x')
        time.sleep(2)
    """))
    job = tmp_path / 'job.py'
    job.write_text(textwrap.dedent(f"""
        import sys
        from mmchansearch.tool_runs import ToolRunner
        runner = ToolRunner(r'{tmp_path / 'w'}')
        runner.run('baseline', r'{script}')
        runner.run('method_' + sys.argv[1], r'{script}', sys.argv[1])
    """))
    jobs = [subprocess.Popen([sys.executable, str(job), name])
            for name in ('a', 'b')]
    assert [j.wait(timeout=120) for j in jobs] == [0, 0]
    assert (tmp_path / 'runs').read_text() == 'xxx'  # baseline once
    recorded = json.loads((tmp_path / 'w' / 'stages.json').read_text())
    assert recorded.keys() == {'baseline', 'method_a', 'method_b'}
