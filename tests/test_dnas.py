"""FBNet's search space, the DNAS algorithm and its search loop."""
import csv
import json
import random
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from mmchansearch.channel_cfg import load_channel_cfg
from mmchansearch.engine.dnas_search import DNASSearchLoop
from mmchansearch.errors import (
    BudgetError,
    ChannelConfigError,
    ConfigError,
    LatencyTableError,
    NonFiniteError,
)
from mmchansearch.latency_table import LatencyTable, measurement_meta
from mmchansearch.models.backbones.fbnet import (
    CANDIDATES,
    ChoiceLayer,
    FBNetSearchSpace,
)
from mmchansearch.optim import SeparateOptimWrapperConstructor
from mmchansearch.registry import MODELS

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / 'configs' / 'dnas'
SEARCH = CONFIGS / 'dnas_fbnet-small_search_1xb64_fashion-mnist.py'
RETRAIN = CONFIGS / 'dnas_fbnet-small_retrain_1xb64_fashion-mnist.py'
TINY_SPACE = dict(type='FBNetSearchSpace', stages=((1, 8, 1), (2, 16, 2)),
                  stem_channels=8, stem_stride=1, last_channels=32)
INPUT = (3, 16, 16)


def _classifier(**backbone) -> dict:
    return dict(type='ImageClassifier',
                backbone=dict(TINY_SPACE, **backbone),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(type='LinearClsHead', num_classes=4,
                          in_channels=32,
                          loss=dict(type='CrossEntropyLoss')))


def _build(cfg: dict):
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        return MODELS.build(cfg)


def _dnas(**kwargs):
    kwargs.setdefault('cost_metric', 'flops')
    kwargs.setdefault('loss_form', 'additive')
    return _build(dict(type='DNAS', architecture=_classifier(),
                       input_shape=INPUT, **kwargs))


def _table_for(model, path=None) -> LatencyTable:
    """Made-up distinct latencies (ms) for every op of the space."""
    ops = {op.signature: op for op in model.latency_ops()}
    table = LatencyTable({s: 1.0 + 0.5 * i for i, s in enumerate(ops)},
                         measurement_meta('cpu'), str(path))
    if path:
        table.save(path)
    return table


def _random_blocks(model, seed: int) -> dict[str, str]:
    return model.sample_blocks(random.Random(seed))


# ------------------------------------------------------- search space
def test_default_space_is_fbnets():
    space = FBNetSearchSpace()
    assert len(space.layers) == 22
    outs = [next(iter(layer.candidates.values())) for layer in space.layers]
    channels = [m.project.conv.out_channels for m in outs]
    assert channels == [16] + [24] * 4 + [32] * 4 + [64] * 4 + [112] * 4 \
        + [184] * 4 + [352]
    strides = [m.depthwise.conv.stride[0] for m in outs]
    assert [i for i, s in enumerate(strides) if s == 2] == [1, 5, 9, 17]
    # skip only where a layer keeps its input's shape
    with_skip = [i for i, layer in enumerate(space.layers)
                 if 'skip' in layer.names]
    assert with_skip == [0, 2, 3, 4, 6, 7, 8, 10, 11, 12, 14, 15, 16, 18,
                         19, 20]
    assert all(len(layer.names) in (8, 9) for layer in space.layers)
    assert space.stem.conv.stride == (2, 2) and space.out_channels == 1984


def test_block_structure():
    block = FBNetSearchSpace(**{k: v for k, v in TINY_SPACE.items()
                                if k != 'type'}).layers[1].candidates[
        'k5_e1_g2']
    assert block.expand.conv.groups == 2 and block.project.conv.groups == 2
    assert block.depthwise.conv.kernel_size == (5, 5)
    assert block.depthwise.conv.groups == block.depthwise.conv.in_channels
    assert not block.residual  # 8 -> 16 channels, stride 2


@pytest.mark.parametrize('kwargs, error, needle', [
    (dict(candidates=('k4_e1', )), ConfigError, 'odd kernel'),
    (dict(candidates=('conv', )), ConfigError, 'unknown block'),
    (dict(candidates=()), ConfigError, 'empty'),
    (dict(blocks={'layers.9': 'k3_e1'}), ChannelConfigError,
     'unknown layer'),
    (dict(blocks={'layers.0': 'k7_e9'}), ChannelConfigError,
     'unknown block'),
    (dict(blocks={'layers.0': 'k3_e1'}), ChannelConfigError, 'no block for'),
    (dict(blocks={'layers.0': 'k3_e1', 'layers.1': 'skip',
                  'layers.2': 'k3_e1'}), ConfigError, 'skip cannot'),
])
def test_bad_space_settings_are_refused(kwargs, error, needle):
    with pytest.raises(error, match=needle):
        FBNetSearchSpace(**{k: v for k, v in TINY_SPACE.items()
                            if k != 'type'}, **kwargs)


def test_choice_layer_mixes_its_candidates():
    layer = ChoiceLayer({'a': torch.nn.Identity(),
                         'b': torch.nn.Sequential()})
    x = torch.randn(2, 3)
    layer.weights = torch.tensor([0.25, 0.75])
    assert torch.allclose(layer(x), x)
    layer.weights, layer.active = None, 'b'
    assert torch.equal(layer(x), x)


# -------------------------------------------------------- DNAS costs
def test_flops_of_a_derived_net_match_fvcore(count_flops):
    model = _dnas().eval()
    for seed in range(3):
        blocks = _random_blocks(model, seed)
        static = model.export_static(blocks)
        flops = count_flops(static, torch.zeros(1, *INPUT))
        assert model.cost_of(blocks)['flops'] == flops
        params = sum(p.numel() for p in static.parameters())
        assert model.cost_of(blocks)['params'] == params


def test_lut_latency_is_the_sum_of_the_ops_entries(tmp_path):
    probe = _dnas()
    table = _table_for(probe, tmp_path / 'lut.json')
    model = _dnas(latency_table=str(tmp_path / 'lut.json'))
    blocks = _random_blocks(model, 1)
    chosen = {'stem', 'last', 'head'} | {f'{n}.{b}' for n, b in
                                          blocks.items()}
    expected = sum(table[model._signature(key)] for key in chosen)
    assert model.cost_of(blocks)['latency'] == pytest.approx(expected)


def test_static_export_equals_the_supernet_and_the_blocks_config(tmp_path):
    model = _dnas().eval()
    blocks = _random_blocks(model, 2)
    static = model.export_static(blocks).eval()
    x = torch.randn(2, *INPUT)
    model.set_blocks(blocks)
    with torch.no_grad():
        assert torch.allclose(model(x), static(x, mode='tensor'))
    for name, layer in enumerate(static.backbone.layers):
        assert layer.names == [blocks[f'backbone.layers.{name}']]
    rebuilt = _build(_classifier(blocks=blocks)).eval()
    rebuilt.load_state_dict(static.state_dict())  # same names and shapes
    with torch.no_grad():
        assert torch.allclose(rebuilt(x, mode='tensor'),
                              static(x, mode='tensor'))


def test_sampled_cost_is_the_mixture_and_one_hot_is_exact():
    model = _dnas().train()
    blocks = _random_blocks(model, 3)
    for (name, names), alpha in zip(model.options.items(),
                                    model.arch_params):
        with torch.no_grad():
            alpha.fill_(-1e4)
            alpha[names.index(blocks[name])] = 1e4
    model.tau = 0.1
    cost = model.sample_architecture()
    assert float(cost.detach()) == pytest.approx(
        model.cost_of(blocks)['flops'],
        rel=1e-6)
    model.clear_architecture()


def _batch(n: int = 8) -> dict:
    samples = [DataSample().set_gt_label(i % 4) for i in range(n)]
    return dict(inputs=[torch.rand(*INPUT) * 255 for _ in range(n)],
                data_samples=samples)


def _optim(model, arch_lr: float = 0.05):
    return SeparateOptimWrapperConstructor(dict(
        architecture=dict(optimizer=dict(type='SGD', lr=0.01)),
        arch_params=dict(optimizer=dict(type='Adam', lr=arch_lr))))(model)


def test_gradients_reach_theta_and_steps_touch_their_own_parameters():
    model = _dnas().train()
    optim = _optim(model)
    theta = [a.detach().clone() for a in model.arch_params]
    weight = model.architecture.head.fc.weight.detach().clone()
    model.train_step(_batch(), optim)
    assert all(torch.equal(a, b) for a, b in zip(theta, model.arch_params))
    assert not torch.equal(weight, model.architecture.head.fc.weight)
    weight = model.architecture.head.fc.weight.detach().clone()
    model.arch_step(_batch(), optim)
    assert all(not torch.equal(a, b)
               for a, b in zip(theta, model.arch_params))
    assert torch.equal(weight, model.architecture.head.fc.weight)


def test_large_latency_weight_moves_to_cheaper_blocks(tmp_path):
    probe = _dnas()
    _table_for(probe, tmp_path / 'lut.json')
    model = _dnas(latency_table=str(tmp_path / 'lut.json'),
                  cost_metric='latency', cost_weight=100.0).train()
    optim = _optim(model, arch_lr=0.2)

    def expected_latency() -> float:
        total = model.fixed_cost['latency']
        for name, probs in model.probabilities().items():
            total += sum(p * model.costs[name][b]['latency']
                         for p, b in zip(probs, model.options[name]))
        return total

    model.tau = 1.0
    before = expected_latency()
    for _ in range(30):
        model.arch_step(_batch(), optim)
    cheapest = {n: min(c, key=lambda b: c[b]['latency'])
                for n, c in model.costs.items()}
    lowest = model.cost_of(cheapest)['latency']
    assert (before - expected_latency()) > 0.5 * (before - lowest)
    derived = model.derived_blocks()
    assert sum(derived[n] == b for n, b in cheapest.items()) >= \
        len(cheapest) - 1


@pytest.mark.parametrize('kwargs, error, needle', [
    (dict(cost_metric='latency'), ConfigError, 'needs latency_table'),
    (dict(cost_metric='watts'), ConfigError, 'cost_metric'),
    (dict(loss_form='square'), ConfigError, 'loss_form'),
    (dict(target=1.0), BudgetError, 'below the cheapest'),
    (dict(loss_form='multiplicative', cost_metric='params'), ConfigError,
     "use loss_form='additive'"),
])
def test_bad_dnas_settings_are_refused(kwargs, error, needle):
    with pytest.raises(error, match=needle):
        _dnas(**kwargs)


def test_a_table_missing_an_op_is_refused(tmp_path):
    probe = _dnas()
    table = _table_for(probe)
    missing = sorted(table.entries)[3]
    del table.entries[missing]
    table.source = str(tmp_path / 'lut.json')
    table.save(tmp_path / 'lut.json')
    with pytest.raises(LatencyTableError) as info:
        _dnas(latency_table=str(tmp_path / 'lut.json'))
    assert repr(missing) in str(info.value)
    assert 'build_latency_lut.py' in str(info.value)


def test_nan_theta_derives_and_samples_nothing(tmp_path):
    model = _dnas()
    with torch.no_grad():
        model.arch_params[0].fill_(float('nan'))
    trained = SimpleNamespace(model=model, work_dir=str(tmp_path),
                              train=lambda: None)
    with pytest.raises(NonFiniteError, match='architecture parameters of '
                       'backbone.layers.0 = .* NaN/inf'):
        DNASSearchLoop(trained, num_candidates=0).run()
    assert not list(tmp_path.iterdir())


def test_architecture_must_be_an_fbnet_space():
    arch = dict(_classifier(), backbone=dict(type='MobileNetV2',
                                             widen_factor=0.25))
    with pytest.raises(ConfigError, match='FBNetSearchSpace'):
        _build(dict(type='DNAS', architecture=arch, input_shape=INPUT,
                    cost_metric='flops'))


# ------------------------------------------------ the tools, end to end
def _search_options(differentiable_search_options, root, lut,
                    epochs: int) -> list[str]:
    """The shared tiny-data options, the latency table, and validation on
    held-out training images [96, 128)."""
    return differentiable_search_options(root, epochs) + [
        # the config's target is in ms of one CPU; a table measured here
        # can make it unreachable, so the test searches without a target
        f'model.latency_table={lut}', 'model.target=None',
        f'val_dataloader.dataset.dataset.data_root={root}',
        'val_dataloader.dataset.start=96', 'val_dataloader.dataset.stop=128',
        f'train_cfg.val_interval={epochs}',
        'val_cfg.calibrate_bn_batches=1', 'search_loop.num_samples=3',
        'search_loop.num_candidates=0',  # trained in their own tests
    ]


@pytest.fixture(scope='module')
def searched(tmp_path_factory, make_fashion_mnist, run_tool,
             differentiable_search_options):
    """The reduced Fashion-MNIST config: LUT, 2-epoch search, resume to 3."""
    tmp = tmp_path_factory.mktemp('dnas')
    root = make_fashion_mnist(tmp / 'data', 128, 32)
    lut = tmp / 'lut.json'
    run_tool('tools/build_latency_lut.py', SEARCH, '--device', 'cpu',
             '--warmup', '1', '--repeats', '3', '-o', lut)
    work_dir = tmp / 'search'
    run_tool('tools/search.py', SEARCH, '--work-dir', work_dir,
             '--cfg-options',
             *_search_options(differentiable_search_options, root, lut, 2))
    first = json.loads((work_dir / 'arch_history.json').read_text())
    run_tool('tools/search.py', SEARCH, '--work-dir', work_dir, '--resume',
             '--cfg-options',
             *_search_options(differentiable_search_options, root, lut, 3))
    return tmp, root, lut, work_dir, first


def test_search_writes_the_derived_net_and_samples(searched, count_flops):
    _, _, lut, work_dir, _ = searched
    derived = load_channel_cfg(work_dir / 'derived.yaml')
    cfg = Config.fromfile(SEARCH)
    # no target: the config's ms may be below what this (loaded) machine
    # measured for the cheapest network
    model = _build(dict(cfg.model, latency_table=str(lut), target=None))
    assert set(derived.blocks) == set(model.all_layers)
    costs = model.cost_of(derived.blocks)
    for key in ('flops', 'params', 'latency'):
        assert derived.meta[key] == pytest.approx(costs[key])
    static = model.export_static(derived.blocks)
    assert derived.meta['flops'] == count_flops(static,
                                                torch.zeros(1, 3, 32, 32))
    assert derived.channels['backbone.last.conv'] == 256
    distributions = json.loads((work_dir / 'distributions.json').read_text())
    for layer, entry in distributions.items():
        assert sum(entry['probabilities']) == pytest.approx(1.0)
        probs = entry['probabilities']
        assert derived.blocks[layer] == entry['candidates'][
            probs.index(max(probs))]
    rows = (work_dir / 'samples.csv').read_text().splitlines()
    assert rows[0] == 'sample,log_prob,flops,params,latency'
    assert len(rows) == 4
    for k in range(3):
        sample = load_channel_cfg(work_dir / 'samples' / f'sample_{k}.yaml')
        assert sample.meta['latency'] == pytest.approx(
            model.cost_of(sample.blocks)['latency'])
    assert (work_dir / 'block_distributions.png').stat().st_size > 0


def test_search_resumes_after_a_kill(searched):
    _, _, _, work_dir, first = searched
    log = sorted(work_dir.glob('2*/*.log'))[-1].read_text()
    assert 'resumed epoch: 2' in log
    history = json.loads((work_dir / 'arch_history.json').read_text())
    assert [h['epoch'] for h in history] == [0, 1, 2]
    assert history[:2] == first


def test_killed_search_resumes_to_the_same_result(
        tmp_path, make_fashion_mnist, run_tool, kill_when,
        differentiable_search_options, final_state):
    """kill -9 in the last of three epochs (one warm-up, validation every
    epoch), --resume: derived.yaml, the samples, the distributions and every
    parameter (theta included) are the uninterrupted run's. The cost is
    the FLOPs here, so no latency table is measured."""
    root = make_fashion_mnist(tmp_path / 'data', 128, 32)
    options = ['--cfg-options', *differentiable_search_options(root, 3),
               'model.latency_table=None', "model.cost_metric='flops'",
               'model.target=None', 'model.cost_weight=0.5',
               f'val_dataloader.dataset.dataset.data_root={root}',
               'val_dataloader.dataset.start=96',
               'val_dataloader.dataset.stop=128', 'train_cfg.val_interval=1',
               'train_cfg.arch_dataloader.dataset.stop=80',
               'val_cfg.calibrate_bn_batches=1', 'search_loop.num_samples=2',
               'search_loop.num_candidates=0']
    straight, killed = tmp_path / 'straight', tmp_path / 'killed'
    run_tool('tools/search.py', SEARCH, '--work-dir', straight, *options)
    kill_when(lambda: (killed / 'epoch_2.pth').exists(), 'tools/search.py',
              SEARCH, '--work-dir', killed, *options)
    assert not (killed / 'derived.yaml').exists()
    run_tool('tools/search.py', SEARCH, '--work-dir', killed, '--resume',
             *options)
    for name in ('derived.yaml', 'samples/sample_0.yaml',
                 'samples/sample_1.yaml'):
        resumed = load_channel_cfg(killed / name)
        expected = load_channel_cfg(straight / name)
        assert resumed.blocks == expected.blocks, name
        assert resumed.channels == expected.channels, name
    for name in ('distributions.json', 'arch_history.json'):
        assert json.loads((killed / name).read_text()) == \
            json.loads((straight / name).read_text()), name
    resumed, reference = final_state(killed), final_state(straight)
    assert resumed.keys() == reference.keys()
    for key, value in reference.items():
        assert torch.equal(resumed[key], value), key


# ------------------------------------ FBNet's last step: the candidates
def _candidate_options(searched, differentiable_search_options,
                       epochs: int = 1) -> list[str]:
    """The finished search's options, with 3 candidates of ``epochs``
    epochs (one of 3 iterations) scored on held-out images [96, 128)."""
    _, root, lut, _, _ = searched
    return ['--cfg-options',
            *_search_options(differentiable_search_options, root, lut, 3),
            'search_loop.num_candidates=3',
            f'search_loop.candidate_epochs={epochs}']


def _trainings(work_dir: Path) -> dict[str, list[str]]:
    """Candidate -> the timestamped run folders of its trainings."""
    return {d.name: sorted(r.name for r in d.iterdir() if r.is_dir())
            for d in sorted((work_dir / 'candidates').iterdir())}


@pytest.fixture(scope='module')
def candidates(searched, run_tool, differentiable_search_options):
    """The finished search resumed with the candidate step on: only the
    candidates train."""
    tmp, _, _, work_dir, _ = searched
    copy = tmp / 'candidates'
    shutil.copytree(work_dir, copy)
    out = run_tool('tools/search.py', SEARCH, '--work-dir', copy, '--resume',
                   *_candidate_options(searched,
                                       differentiable_search_options))
    return copy, out


def test_candidates_train_and_the_best_is_written(searched, candidates):
    _, _, _, work_dir, _ = searched
    copy, out = candidates
    state = json.loads((copy / 'candidates_state.json').read_text())
    assert len(state['candidates']) == 3
    assert set(state['results']) == {'0', '1', '2'}
    assert _trainings(copy).keys() == {'candidate_0', 'candidate_1',
                                       'candidate_2'}
    assert all(len(runs) == 1 for runs in _trainings(copy).values())
    derived = load_channel_cfg(copy / 'derived.yaml')
    assert derived.blocks == load_channel_cfg(
        work_dir / 'derived.yaml').blocks  # the search did not train on
    assert state['candidates'][0]['blocks'] == derived.blocks  # the argmax
    assert len({json.dumps(c['blocks']) for c in state['candidates']}) == 3
    rows = list(csv.DictReader(
        (copy / 'candidates.csv').read_text().splitlines()))
    assert list(rows[0]) == ['rank', 'index', 'source', 'blocks', 'flops',
                             'params', 'latency', 'held_out_accuracy/top1']
    accuracies = [float(r['held_out_accuracy/top1']) for r in rows]
    assert accuracies == sorted(accuracies, reverse=True)
    assert sorted(accuracies) == pytest.approx(sorted(
        state['results'].values()), abs=1e-4)
    best = load_channel_cfg(copy / 'best.yaml')
    winner = state['candidates'][int(rows[0]['index'])]
    assert best.blocks == winner['blocks']
    assert rows[0]['blocks'] == ' '.join(winner['blocks'].values())
    assert best.channels['backbone.last.conv'] == 256
    assert best.meta['held_out_accuracy'] == pytest.approx(accuracies[0],
                                                           abs=1e-4)
    assert best.meta['latency'] == pytest.approx(winner['latency'])
    assert 'best: ' in out.stderr + out.stdout
    # each candidate trained as its static network on the weights' split
    # and was scored on the held-out images, not the test files
    run = _trainings(copy)['candidate_1'][0]
    child = Config.fromfile(copy / 'candidates' / 'candidate_1' / run /
                            'vis_data' / 'config.py')
    assert child.model.backbone.blocks == state['candidates'][1]['blocks']
    assert child.train_dataloader.dataset.stop == 48
    assert (child.val_dataloader.dataset.start,
            child.val_dataloader.dataset.stop) == (96, 128)
    assert child.train_cfg.max_epochs == 1
    assert child.get('test_dataloader') is None


def test_resumed_candidates_train_only_the_missing_ones(
        searched, candidates, run_tool, differentiable_search_options,
        tmp_path):
    copy, _ = candidates
    work_dir = tmp_path / 'resumed'
    shutil.copytree(copy, work_dir)
    before = _trainings(work_dir)
    best = (work_dir / 'best.yaml').read_text()
    options = _candidate_options(searched, differentiable_search_options)
    out = run_tool('tools/search.py', SEARCH, '--work-dir', work_dir,
                   '--resume', *options)
    assert _trainings(work_dir) == before  # nothing trained again
    assert 'resuming the candidate training' in out.stdout + out.stderr
    assert (work_dir / 'best.yaml').read_text() == best
    assert (work_dir / 'derived.yaml').is_file()
    # as after a kill -9 in candidate 2's training: only it trains
    state_file = work_dir / 'candidates_state.json'
    state = json.loads(state_file.read_text())
    del state['results']['2']
    state_file.write_text(json.dumps(state))
    run_tool('tools/search.py', SEARCH, '--work-dir', work_dir, '--resume',
             *options)
    after = _trainings(work_dir)
    assert {k: v for k, v in after.items() if k != 'candidate_2'} == \
        {k: v for k, v in before.items() if k != 'candidate_2'}
    assert len(after['candidate_2']) == 2
    assert set(json.loads(state_file.read_text())['results']) == \
        {'0', '1', '2'}
    # another candidate schedule does not mix with the saved results
    result = run_tool('tools/search.py', SEARCH, '--work-dir', work_dir,
                      '--resume', *_candidate_options(
                          searched, differentiable_search_options, epochs=2),
                      check=False)
    assert result.returncode != 0
    assert 'candidates_state.json was made with another candidate ' \
        'config.param_scheduler, candidate config.train_cfg' in \
        result.stderr


def test_candidates_train_on_two_cpu_processes(
        searched, candidates, run_torchrun, differentiable_search_options,
        tmp_path):
    """torchrun with 2 gloo processes: each rank trains one of the 2
    candidates (in a subprocess), rank 0 writes the results."""
    _, _, _, work_dir, _ = searched
    copy = tmp_path / 'dist'
    shutil.copytree(work_dir, copy)
    options = _candidate_options(searched, differentiable_search_options)
    run_torchrun(2, 'tools/search.py', SEARCH, '--work-dir', copy,
                 '--resume', *options, 'search_loop.num_candidates=2')
    state = json.loads((copy / 'candidates_state.json').read_text())
    assert set(state['results']) == {'0', '1'}
    for k in (0, 1):  # trained in a subprocess each
        assert (copy / 'candidates' / f'candidate_{k}' /
                'child_result.json').is_file()
    # the same candidates as on one process, scored alike
    single = json.loads((candidates[0] / 'candidates_state.json'
                         ).read_text())
    assert state['candidates'] == single['candidates'][:2]
    assert state['results'] == pytest.approx(
        {k: single['results'][k] for k in ('0', '1')}, abs=1e-6)
    assert load_channel_cfg(copy / 'best.yaml').blocks in \
        [c['blocks'] for c in state['candidates']]


def test_candidates_need_a_retrain_config(tmp_path):
    runner = SimpleNamespace(model=_dnas(), work_dir=str(tmp_path),
                             cfg=Config(dict(val_dataloader=dict())))
    with pytest.raises(ConfigError, match='retrain_config'):
        DNASSearchLoop(runner, retrain_config=str(tmp_path / 'none.py'))


def test_derived_net_retrains_and_exports_to_onnx(searched, run_tool):
    tmp, root, _, work_dir, _ = searched
    derived = work_dir / 'derived.yaml'
    options = [f'model.channel_cfgs={derived}',
               f'train_dataloader.dataset.data_root={root}',
               'train_dataloader.num_workers=0',
               'train_dataloader.persistent_workers=False',
               'train_dataloader.batch_size=32',
               f'val_dataloader.dataset.data_root={root}',
               'val_dataloader.num_workers=0',
               'val_dataloader.persistent_workers=False',
               f'test_dataloader.dataset.data_root={root}',
               'test_dataloader.num_workers=0',
               'test_dataloader.persistent_workers=False',
               'max_epochs=1', 'train_cfg.max_epochs=1',
               'param_scheduler.end=1']
    train_dir = tmp / 'retrain'
    run_tool('tools/train.py', RETRAIN, '--work-dir', train_dir,
             '--cfg-options', *options)
    checkpoint = (train_dir / 'last_checkpoint').read_text().strip()
    # the checkpoint holds its channel_cfg: no --channel-cfg needed
    out = run_tool('tools/export_subnet.py', RETRAIN, '--shape', '32', '32',
                   '--checkpoint', checkpoint,
                   '-o', tmp / 'fbnet.pth', '--onnx', tmp / 'fbnet.onnx')
    assert 'onnxruntime vs torch' in out.stdout
    assert (tmp / 'fbnet.onnx').stat().st_size > 0
    error = float(out.stdout.split('max |diff|')[1].split()[0])
    assert error < 1e-3


def test_missing_blocks_file_is_a_clear_error(tmp_path, run_tool):
    # the data roots exist (a clean clone has no data/fashion_mnist), so
    # the error is the blocks file's
    result = run_tool('tools/train.py', RETRAIN, '--work-dir', tmp_path,
                      '--cfg-options',
                      f'model.channel_cfgs={tmp_path / "none.yaml"}',
                      *(f'{loader}.dataset.data_root={tmp_path}' for loader
                        in ('train_dataloader', 'val_dataloader',
                            'test_dataloader')),
                      check=False)
    assert result.returncode != 0
    assert 'none.yaml: no such file' in result.stderr


def test_imagenet_configs_build():
    for name in ('dnas_fbnet_search_8xb32_in1k.py',
                 'dnas_fbnet_retrain_8xb32_in1k.py'):
        cfg = Config.fromfile(CONFIGS / name)
        assert cfg.model
    search = Config.fromfile(CONFIGS / 'dnas_fbnet_search_8xb32_in1k.py')
    model = _build(dict(search.model, latency_table=None,
                        cost_metric='flops', loss_form='additive'))
    assert len(model.layers) == 22
    assert [len(n) for n in model.options.values()].count(9) == 16
    assert search.train_dataloader.dataset.permute_seed == \
        search.train_cfg.arch_dataloader.dataset.permute_seed
    # a `_delete_` with nothing to delete stays, and the builders refuse it
    for key in ('optim_wrapper', 'param_scheduler', 'train_cfg'):
        assert '_delete_' not in search[key]
    assert set(CANDIDATES) == set(model.options['backbone.layers.2'])
    # FBNet-B (Wu et al., Figure 4): 295M FLOPs at 224x224
    fbnet_b = ('k3_e1 k3_e6 k5_e1 k3_e1 k3_e1 k5_e6 k5_e3 k3_e6 k5_e6 k5_e6 '
               'k5_e1 skip k5_e3 k5_e6 k3_e1 k5_e1 k5_e3 k5_e6 k5_e1 k5_e6 '
               'k5_e6 k3_e6').split()
    flops = model.cost_of({f'backbone.layers.{i}': b
                           for i, b in enumerate(fbnet_b)})['flops']
    assert flops == pytest.approx(295e6, rel=0.01)
