"""Network Adjustment: growing supernets, budget refits, the search loop.

The loop runs through ``tools/search.py`` on tiny Fashion-MNIST-format data
made here (ResNet-18-CIFAR 0.25x, two rounds of one short epoch), with the
config's protocol ('paper') and with protocol='finetune'.
"""
import json
import random
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mmengine import Config

from mmchansearch.channel_cfg import load_channel_cfg
from mmchansearch.engine.network_adjustment_search import (
    NetworkAdjustmentSearchLoop,
    adjust_widths,
    scaled_variant,
)
from mmchansearch.engine.search_state import SearchState, search_dependencies
from mmchansearch.errors import (
    BudgetError,
    ChannelConfigError,
    CheckpointMismatchError,
    ConfigError,
)
from mmchansearch.models.algorithms import ChannelSupernet
from mmchansearch.mutator import ChannelMutator
from mmchansearch.registry import MODELS
from mmchansearch.supernet import load_supernet_weights

REPO = Path(__file__).resolve().parents[1]
SEARCH = REPO / 'configs' / 'network_adjustment' / \
    'na_resnet18-cifar-0.25x_search_1xb64_fashion-mnist.py'
RETRAIN = REPO / 'configs' / 'network_adjustment' / \
    'na_resnet18-cifar-0.25x_retrain_1xb64_fashion-mnist.py'
N_TRAIN, N_HELDOUT, N_TEST = 64, 32, 32


@pytest.fixture(scope='module')
def grown(quarter_resnet_cfg):
    torch.manual_seed(0)
    return ChannelSupernet(quarter_resnet_cfg, ChannelMutator(
        input_shape=(3, 32, 32), divisor=8, min_width=8,
        width_cap=2.0)).eval()


# ------------------------------------------------------- growing supernet
def test_width_cap_grows_every_group(grown):
    mutator = grown.mutator
    assert mutator.original_widths['backbone.conv1'] == 16
    assert mutator.original_widths['backbone.layer4.0.conv1'] == 128
    for group, width in mutator.original_widths.items():
        assert mutator.max_widths[group] == 2 * width
    layer = grown.architecture.backbone.layer4[0].conv1
    assert tuple(layer.weight.shape) == (256, 128, 3, 3)


def test_original_checkpoint_fills_the_leading_channels(
        grown, tmp_path, randomize_bn, quarter_resnet_cfg):
    torch.manual_seed(1)
    original = MODELS.build(quarter_resnet_cfg).eval()
    randomize_bn(original)
    path = tmp_path / 'original.pth'
    torch.save({'state_dict': original.state_dict()}, path)
    load_supernet_weights(grown, str(path), embed=True)
    grown.mutator.set_choices(grown.mutator.original_widths)
    inputs = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = original(inputs, mode='tensor')
        assert torch.allclose(grown(inputs, mode='tensor'), expected,
                              atol=1e-5)
        static = grown.mutator.export_static()
        assert torch.allclose(static(inputs, mode='tensor'), expected,
                              atol=1e-5)


def test_narrower_checkpoint_is_refused_unless_embedding_is_asked(
        grown, tmp_path, quarter_resnet_cfg):
    """Outside Network Adjustment's pretrained start, a checkpoint of a
    narrower network is a mismatch, not a partly random model."""
    path = tmp_path / 'original.pth'
    torch.save({'state_dict': MODELS.build(quarter_resnet_cfg).state_dict()},
               path)
    with pytest.raises(CheckpointMismatchError,
                       match=r'shape mismatch.*checkpoint \(16, 3, 3, 3\)'):
        load_supernet_weights(grown, str(path))


def test_widths_past_the_cap_are_refused(grown):
    widths = dict(grown.mutator.original_widths)
    widths['backbone.conv1'] = 40  # cap 32
    with pytest.raises(ChannelConfigError, match='backbone.conv1'):
        grown.mutator.set_choices(widths)


def test_width_cap_below_one_is_refused():
    with pytest.raises(ConfigError, match='width_cap'):
        ChannelMutator(width_cap=0.5)


# ---------------------------------------------------------- budget refits
def test_fit_budget_lands_within_tolerance(grown):
    mutator = grown.mutator
    start = mutator.original_widths
    budget = mutator.estimate(start)['flops']
    rng = random.Random(0)
    for _ in range(5):
        shaken = {g: rng.choice(mutator.candidates(g)) for g in start}
        fitted = mutator.fit_budget(shaken, 'flops', budget)
        assert abs(mutator.estimate(fitted)['flops'] / budget - 1) <= 0.01
        mutator.set_choices(fitted)  # valid widths


def test_impossible_budget_is_a_clear_error(grown):
    mutator = grown.mutator
    with pytest.raises(BudgetError, match='out of reach'):
        mutator.fit_budget(mutator.original_widths, 'flops', 1e3)


def test_adjustment_keeps_flops_and_respects_bounds(grown):
    mutator = grown.mutator
    choices = dict(mutator.original_widths)
    choices['backbone.conv1'] = mutator.max_widths['backbone.conv1']
    choices['backbone.layer1.0.conv1'] = 8  # the smallest width
    budget = mutator.estimate(mutator.original_widths)['flops']
    choices = mutator.fit_budget(choices, 'flops', budget, keep=[
        'backbone.conv1', 'backbone.layer1.0.conv1'])
    groups = list(choices)
    # conv1 has the highest FUR but is at its cap; layer1.0.conv1 the
    # lowest but at the smallest width: both are passed over
    fur = {g: -i for i, g in enumerate(groups)}
    fur['backbone.conv1'] = 100.0
    fur['backbone.layer1.0.conv1'] = -100.0
    for _ in range(3):
        widened, narrowed, new = adjust_widths(mutator, choices, fur, budget,
                                               num_changed=2, step=0.2)
        assert 'backbone.conv1' not in widened
        assert 'backbone.layer1.0.conv1' not in narrowed
        assert len(widened) == len(narrowed) == 2
        assert all(new[g] > choices[g] for g in widened)
        assert all(new[g] < choices[g] for g in narrowed)
        assert abs(mutator.estimate(new)['flops'] / budget - 1) <= 0.01
        mutator.set_choices(new)
        choices = new


def test_scaled_variant_matches_the_uniform_network(grown):
    mutator = grown.mutator
    start = mutator.original_widths
    adjusted = mutator.fit_budget(
        {**start, 'backbone.layer4.0.conv1': 200}, 'flops',
        mutator.estimate(start)['flops'], keep=['backbone.layer4.0.conv1'])
    searched, uniform = scaled_variant(mutator, adjusted, start, 0.8)
    assert uniform['backbone.layer4.0.conv1'] == 104  # 0.8 * 128 -> x8
    flops = mutator.estimate(uniform)['flops']
    assert abs(mutator.estimate(searched)['flops'] / flops - 1) <= 0.01
    assert searched['backbone.layer4.0.conv1'] > 104


def test_paper_step_moves_by_a_tenth_of_the_starting_width(
        quarter_resnet_cfg):
    """protocol='paper': a changed group moves by 0.1 * c_init (not of its
    current width); then every group is rescaled by one common factor
    (up to rounding to whole channels) to the budget."""
    mutator = ChannelMutator(input_shape=(3, 32, 32), divisor=1,
                             min_width=4, width_cap=2.0)
    ChannelSupernet(quarter_resnet_cfg, mutator)
    start = dict(mutator.original_widths)
    budget = mutator.estimate(start)['flops']
    current = mutator.fit_budget(
        {**start, 'backbone.layer4.0.conv1': 100,
         'backbone.layer3.0.conv1': 90}, 'flops', budget,
        keep=['backbone.layer4.0.conv1', 'backbone.layer3.0.conv1'])
    groups = list(current)
    fur = {g: float(i) for i, g in enumerate(groups)}
    fur['backbone.layer4.0.conv1'] = 100.0  # widened: 100 + 12.8
    fur['backbone.layer3.0.conv1'] = -100.0  # narrowed: 90 - 6.4
    widened, narrowed, kept = adjust_widths(
        mutator, current, fur, budget, num_changed=1, step=0.1,
        base=start)
    assert widened == ['backbone.layer4.0.conv1']
    assert narrowed == ['backbone.layer3.0.conv1']
    assert start['backbone.layer4.0.conv1'] == 128
    assert kept['backbone.layer4.0.conv1'] == 113  # not 100 * 1.1 = 110
    assert start['backbone.layer3.0.conv1'] == 64
    assert kept['backbone.layer3.0.conv1'] == 84  # not 90 * 0.9 = 81
    lower = 0.9 * budget  # so that the rescale has work to do
    _, _, rescaled = adjust_widths(
        mutator, current, fur, lower, num_changed=1, step=0.1,
        base=start, rescale_all=True)
    assert abs(mutator.estimate(rescaled)['flops'] / lower - 1) <= 0.01
    moved = {**current, 'backbone.layer4.0.conv1': 113,
             'backbone.layer3.0.conv1': 84}
    factors = sorted(rescaled[g] / moved[g] for g in groups)
    factor = factors[len(factors) // 2]
    assert 0.9 < factor < 0.97
    assert all(abs(rescaled[g] - factor * moved[g]) <= 1.5 for g in groups)


# --------------------------------------------------- the loop, end to end
def _train_options(root: Path) -> list[str]:
    return [
        f'train_dataloader.dataset.dataset.data_root={root}',
        f'train_dataloader.dataset.stop={N_TRAIN}',
        'train_dataloader.batch_size=32', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        f'val_dataloader.dataset.data_root={root}',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        'max_epochs=1', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'param_scheduler.end=1',
    ]


def _options(root: Path, rounds: int = 2,
             protocol: str | None = None) -> list[str]:
    """Tiny-data options; ``protocol`` None keeps the config's ('paper')."""
    return _train_options(root) + [
        f'search_loop.dataloader.dataset.dataset.data_root={root}',
        f'search_loop.dataloader.dataset.start={N_TRAIN}',
        f'search_loop.dataloader.dataset.stop={N_TRAIN + N_HELDOUT}',
        f'search_loop.rounds={rounds}', 'search_loop.dropout.repeats=1',
    ] + ([f'search_loop.protocol={protocol}'] if protocol else [])


@pytest.fixture(scope='module')
def search(tmp_path_factory, make_fashion_mnist, run_tool):
    tmp = tmp_path_factory.mktemp('na')
    root = make_fashion_mnist(tmp / 'data', N_TRAIN + N_HELDOUT, N_TEST)
    work_dir = tmp / 'search'
    run_tool('tools/search.py', SEARCH, '--work-dir', work_dir,
             '--cfg-options', *_options(root))
    return dict(tmp=tmp, root=root, work_dir=work_dir)


@pytest.fixture(scope='module')
def finetune_search(search, run_tool):
    work_dir = search['tmp'] / 'finetune'
    run_tool('tools/search.py', SEARCH, '--work-dir', work_dir,
             '--cfg-options', *_options(search['root'],
                                        protocol='finetune'))
    return dict(search, work_dir=work_dir)


def _log(work_dir: Path) -> str:
    return '\n'.join(p.read_text() for p in work_dir.glob('2*/*.log'))


def test_search_writes_every_round_and_the_result(search):
    work_dir = search['work_dir']
    state = json.loads((work_dir / 'adjustment_state.json').read_text())
    budget = state['budget']
    for round_ in (1, 2):
        cfg = load_channel_cfg(work_dir / f'round_{round_}' / 'channels.yaml')
        assert abs(cfg.meta['flops'] / budget - 1) <= 0.01
        assert 0 <= cfg.meta['heldout_top1'] <= 100
        rows = (work_dir / f'round_{round_}' / 'fur.csv').read_text(
        ).splitlines()
        assert rows[0].startswith('group,width,new_width,change')
        assert len(rows) == 1 + 12  # every group of ResNet-18
        assert sum(',widen,' in r for r in rows) == 2
        assert sum(',narrow,' in r for r in rows) == 2
    final = load_channel_cfg(work_dir / 'final.yaml')
    assert abs(final.meta['flops'] / budget - 1) <= 0.01
    assert final.channels != load_channel_cfg(
        work_dir / 'original.yaml').channels
    scaled = load_channel_cfg(work_dir / 'final_x0.8.yaml')
    uniform = load_channel_cfg(work_dir / 'uniform_x0.8.yaml')
    assert abs(scaled.meta['flops'] / uniform.meta['flops'] - 1) <= 0.01
    assert (work_dir / 'adjustment.png').stat().st_size > 0
    assert len((work_dir / 'rounds.csv').read_text().splitlines()) == 3
    log = _log(work_dir)
    for round_ in (1, 2):
        assert f'round {round_}/2: training' in log
    assert log.count(', from scratch, channel dropout 0.05') == 4


def test_paper_searched_x08_adjusts_the_uniform_x08_network(search):
    """"searched 0.8x" is its own adjustment: x0.8/ trains the uniform
    0.8x network in its round 1 and its rounds keep that network's FLOPs;
    final_x0.8.yaml is its last round's result."""
    work_dir = search['work_dir']
    uniform = load_channel_cfg(work_dir / 'uniform_x0.8.yaml')
    sub = work_dir / 'x0.8'
    assert load_channel_cfg(sub / 'round_1' / 'channels.yaml').channels \
        == uniform.channels
    state = json.loads((sub / 'adjustment_state.json').read_text())
    assert state['done'] == 2 and state['start'] == uniform.channels
    assert state['budget'] == pytest.approx(uniform.meta['flops'])
    round_2 = load_channel_cfg(sub / 'round_2' / 'channels.yaml')
    assert round_2.channels != uniform.channels  # adjusted once
    final = load_channel_cfg(work_dir / 'final_x0.8.yaml')
    assert final.channels == state['choices']
    assert abs(final.meta['flops'] / uniform.meta['flops'] - 1) <= 0.01
    assert len((sub / 'rounds.csv').read_text().splitlines()) == 3
    assert 'of the uniform x0.8 network' in (
        work_dir / 'final_x0.8.yaml').read_text()


def test_finetune_protocol_is_the_first_protocol(finetune_search):
    """protocol='finetune': round 2 starts from round 1's checkpoint, no
    training dropout, and "searched 0.8x" is the rescaled result."""
    work_dir = finetune_search['work_dir']
    log = _log(work_dir)
    assert 'round 1/2: training' in log and ', from scratch' in log
    assert f'from {work_dir / "round_1" / "epoch_1.pth"}, channel ' \
        'dropout 0' in log
    assert not (work_dir / 'x0.8').exists()
    assert 'scaled to the FLOPs of the uniform x0.8' in (
        work_dir / 'final_x0.8.yaml').read_text()
    rows = (work_dir / 'round_1' / 'fur.csv').read_text().splitlines()
    assert sum(',widen,' in r for r in rows) == 2


@pytest.mark.parametrize('protocol', ['paper', 'finetune'])
def test_paper_rounds_start_from_scratch(search, run_tool, tmp_path,
                                         protocol):
    """With lr 0 a round ends with the weights it started from: a paper
    round's weights differ from the previous round's end (a fresh
    initialization), a finetune round's are the previous round's."""
    work_dir = tmp_path / protocol
    run_tool('tools/search.py', SEARCH, '--work-dir', work_dir,
             '--cfg-options', *_options(search['root'], protocol=protocol),
             'optim_wrapper.optimizer.lr=0', 'search_loop.scales=[]')
    ends = [torch.load(work_dir / f'round_{r}' / 'epoch_1.pth',
                       weights_only=False)['state_dict'] for r in (1, 2)]
    convs = [k for k, v in ends[0].items() if k.endswith('conv1.weight')
             and ends[1][k].shape == v.shape]
    assert len(convs) >= 8
    same = [torch.equal(ends[0][k], ends[1][k]) for k in convs]
    assert all(same) if protocol == 'finetune' else not any(same)


def test_result_retrains_as_a_static_network(search, run_tool):
    work_dir = search['tmp'] / 'retrain'
    run_tool('tools/train.py', RETRAIN, '--work-dir', work_dir,
             '--cfg-options', *_train_options(search['root']),
             'model.channel_cfgs=' + str(search['work_dir'] / 'final.yaml'))
    checkpoint = (work_dir / 'last_checkpoint').read_text().strip()
    state = torch.load(checkpoint, weights_only=False)['state_dict']
    final = load_channel_cfg(search['work_dir'] / 'final.yaml')
    assert state['architecture.backbone.conv1.weight'].shape[0] == \
        final.channels['backbone.conv1']


def test_killed_search_resumes_at_the_next_round(search, run_tool):
    reference = search['work_dir']
    work_dir = search['tmp'] / 'killed'
    shutil.copytree(reference, work_dir)
    # what a kill early in round 2 leaves: round 1 done and saved
    state_file = work_dir / 'adjustment_state.json'
    state = json.loads(state_file.read_text())
    state['done'], state['history'] = 1, state['history'][:1]
    state['choices'] = load_channel_cfg(
        reference / 'round_2' / 'channels.yaml').channels
    state_file.write_text(json.dumps(state))
    shutil.rmtree(work_dir / 'round_2')
    for path in work_dir.glob('*.yaml'):
        path.unlink()
    round_1 = work_dir / 'round_1' / 'epoch_1.pth'
    trained_at = round_1.stat().st_mtime_ns
    run_tool('tools/search.py', SEARCH, '--work-dir', work_dir, '--resume',
             '--cfg-options', *_options(search['root']))
    log = '\n'.join(p.read_text() for p in work_dir.glob('2*/*.log'))
    assert 'resuming network adjustment after round 1' in log
    assert round_1.stat().st_mtime_ns == trained_at  # not retrained
    assert (work_dir / 'round_2' / 'fur.csv').exists()
    assert load_channel_cfg(work_dir / 'final.yaml').channels == \
        load_channel_cfg(reference / 'final.yaml').channels


@pytest.mark.parametrize('protocol', ['paper', 'finetune'])
def test_search_killed_mid_round_resumes_to_the_same_result(
        tmp_path, make_fashion_mnist, run_tool, kill_when, protocol):
    """kill -9 in the second epoch of round 1 (between its checkpoints),
    --resume: round 1 continues from its epoch-1 checkpoint through
    mmengine (with the paper's training dropout drawing the same masks),
    and every round's held-out numbers and the final channels are the
    uninterrupted run's."""
    root = make_fashion_mnist(tmp_path / 'data', N_TRAIN + N_HELDOUT, N_TEST)
    options = ['--cfg-options', *_options(root, protocol=protocol),
               'train_cfg.max_epochs=2', 'param_scheduler.end=2',
               'search_loop.scales=[]']
    straight, killed = tmp_path / 'straight', tmp_path / 'killed'
    run_tool('tools/search.py', SEARCH, '--work-dir', straight, *options)
    kill_when(lambda: (killed / 'round_1' / 'last_checkpoint').exists(),
              'tools/search.py', SEARCH, '--work-dir', killed, *options)
    assert not (killed / 'round_1' / 'fur.csv').exists()
    run_tool('tools/search.py', SEARCH, '--work-dir', killed, '--resume',
             *options)
    log = '\n'.join(p.read_text() for p in
                    (killed / 'round_1').glob('*/*.log'))
    assert 'resumed epoch: 1' in log
    assert load_channel_cfg(killed / 'final.yaml').channels == \
        load_channel_cfg(straight / 'final.yaml').channels
    for name in ('rounds.csv', 'round_1/fur.csv', 'round_2/fur.csv'):
        assert (killed / name).read_text() == (straight / name).read_text()


def _state_of(tmp_path: Path, **loop):
    """The SearchState the loop's ``_state`` makes for the shipped config
    with ``loop`` overriding its search_loop (a stub stands for the loop:
    no Runner is built)."""
    cfg = Config.fromfile(str(SEARCH))
    cfg.search_loop.update(loop)
    stub = SimpleNamespace(runner=SimpleNamespace(cfg=cfg), checkpoint=None,
                           resume=True, force=False,
                           _path=lambda *parts: str(tmp_path.joinpath(
                               *parts)))
    return NetworkAdjustmentSearchLoop._state(stub)


def test_a_finished_search_resumes_with_a_scale_added(tmp_path):
    """The rounds do not depend on search_loop.scales: a search run with
    scales=[] resumes with scales=[0.8] (to add the "searched 0.8x"
    adjustment), but not with other rounds."""
    _state_of(tmp_path, scales=[]).save(dict(done=2))
    assert _state_of(tmp_path, scales=[0.8]).load() == dict(done=2)
    with pytest.raises(ConfigError, match='another config.search_loop'):
        _state_of(tmp_path, scales=[0.8], rounds=3).load()


def test_a_state_fingerprinted_with_its_scales_still_resumes(tmp_path):
    """States written while scales was part of the fingerprint: one made
    with scales=[] (the quality benchmark's) resumes with scales=[0.8];
    one made with [0.8] resumes with [0.8] only."""
    cfg = Config.fromfile(str(SEARCH))
    for made, resumed, ok in (([], [0.8], True), ([0.8], [0.8], True),
                              ([0.8], [0.5], False)):
        cfg.search_loop.scales = made
        SearchState(str(tmp_path / 'adjustment_state.json'),
                    search_dependencies(cfg)).save(dict(done=2))
        state = _state_of(tmp_path, scales=resumed)
        if ok:
            assert state.load() == dict(done=2)
        else:
            with pytest.raises(ConfigError,
                               match='another config.search_loop'):
                state.load()


@pytest.mark.parametrize('option, needle', [
    ('search_loop.rounds=0', 'rounds must be an integer >= 1'),
    ('model.mutator.frozen_groups=[backbone.nope]', 'unknown group'),
    ('search_loop.budget=1000', 'out of reach'),
    ('search_loop.protocol=pape', "protocol 'pape' is unknown"),
    ('search_loop.train_dropout.rate=1.0', 'train_dropout takes rate'),
])
def test_bad_settings_fail_clearly(search, run_tool, tmp_path, option,
                                   needle):
    result = run_tool('tools/search.py', SEARCH, '--work-dir', tmp_path,
                      '--cfg-options', *_options(search['root']), option,
                      check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    assert needle in result.stderr
    assert 'Traceback' not in result.stderr


def test_a_diverged_round_stops_before_its_adjustment(
        search, run_tool, tmp_path, quarter_resnet_cfg):
    original = MODELS.build(quarter_resnet_cfg)
    with torch.no_grad():
        original.backbone.conv1.weight.fill_(float('nan'))
    broken = tmp_path / 'nan.pth'
    torch.save({'state_dict': original.state_dict()}, broken)
    work_dir = tmp_path / 'search'
    result = run_tool('tools/search.py', SEARCH, broken, '--work-dir',
                      work_dir, '--cfg-options',
                      *_options(search['root'], rounds=1,
                                protocol='finetune'), check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    assert 'error: network adjustment round 1: FLOPs utilization: ' \
        'non-finite held-out loss = nan, FUR of ' in result.stderr
    assert 'lower the learning rate' in result.stderr
    assert 'Traceback' not in result.stderr
    assert not list(work_dir.rglob('*.yaml'))
    assert not list(work_dir.rglob('*.csv'))


def test_another_checkpoint_replaces_the_converted_start(
        search, run_tool, tmp_path, quarter_resnet_cfg):
    """round_0/pretrained_supernet.pth is the conversion of the checkpoint
    given now, not a stale one left by an earlier run in the work dir."""
    original = MODELS.build(quarter_resnet_cfg)
    paths = {}
    for name, value in (('nan', float('nan')), ('good', None)):
        if value is not None:
            with torch.no_grad():
                original.backbone.conv1.weight.fill_(value)
        else:
            original = MODELS.build(quarter_resnet_cfg)
        paths[name] = tmp_path / f'{name}.pth'
        torch.save({'state_dict': original.state_dict()}, paths[name])
    work_dir = tmp_path / 'search'
    command = ['tools/search.py', SEARCH, '--work-dir', work_dir,
               '--cfg-options', *_options(search['root'], rounds=1,
                                          protocol='finetune')]
    result = run_tool(command[0], command[1], paths['nan'], *command[2:],
                      check=False)
    assert 'non-finite' in result.stderr
    converted = work_dir / 'round_0' / 'pretrained_supernet.pth'
    assert converted.is_file()
    run_tool(command[0], command[1], paths['good'], *command[2:], '--force')
    meta = torch.load(converted, weights_only=False)['meta']
    assert meta['source'] == str(paths['good'])
    assert (work_dir / 'final.yaml').is_file()


def test_scale_tool_matches_the_loops_variant(finetune_search, run_tool,
                                             tmp_path):
    work_dir = finetune_search['work_dir']
    out, uniform = tmp_path / 'x0.8.yaml', tmp_path / 'u0.8.yaml'
    run_tool('tools/scale_channel_cfg.py', SEARCH, work_dir / 'final.yaml',
             '--scale', '0.8', '-o', out, '--uniform-out', uniform)
    assert load_channel_cfg(out).channels == load_channel_cfg(
        work_dir / 'final_x0.8.yaml').channels
    assert load_channel_cfg(uniform).channels == load_channel_cfg(
        work_dir / 'uniform_x0.8.yaml').channels
    result = run_tool('tools/scale_channel_cfg.py', SEARCH,
                      work_dir / 'final.yaml', '--scale', '1.5', '-o', out,
                      check=False)
    assert result.returncode == 2 and 'scale must be in (0, 1]' in \
        result.stderr
    copy = tmp_path / 'final.yaml'
    copy.write_bytes((work_dir / 'final.yaml').read_bytes())
    result = run_tool('tools/scale_channel_cfg.py', SEARCH, copy, '--scale',
                      '0.8', '-o', copy, check=False)
    assert result.returncode == 2 and 'is an input of this command' in \
        result.stderr
    assert copy.read_bytes() == (work_dir / 'final.yaml').read_bytes()


def test_search_runs_on_two_cpu_processes(search, run_torchrun, tmp_path):
    """torchrun with 2 gloo processes: child Runners train distributed,
    every rank measures its shard of the held-out data."""
    work_dir = tmp_path / 'dist'
    run_torchrun(2, 'tools/search.py', SEARCH, '--work-dir', work_dir,
                 '--cfg-options', *_options(search['root']),
                 'train_dataloader.batch_size=16',
                 'search_loop.dataloader.batch_size=8')
    assert len((work_dir / 'rounds.csv').read_text().splitlines()) == 3
    round_log = next((work_dir / 'round_1').glob('*/*.log')).read_text()
    assert 'Distributed training: True' in round_log
    # 64 images, batch 16 per rank: 2 iterations (4 on one process)
    assert 'Epoch(train) [1][2/2]' in round_log


@pytest.mark.parametrize('name', ['resnet50', 'mobilenet_v2'])
def test_adjustment_works_on_other_classifiers(name, classifier_cfg,
                                               randomize_bn):
    torch.manual_seed(0)
    model = ChannelSupernet(classifier_cfg(name), ChannelMutator(
        input_shape=(3, 32, 32), divisor=8, min_width=8, width_cap=2.0))
    randomize_bn(model)
    mutator = model.mutator
    choices = dict(mutator.original_widths)
    budget = mutator.estimate(choices)['flops']
    rng = random.Random(0)
    for _ in range(2):
        fur = {g: rng.random() for g in mutator.searchable_groups}
        widened, narrowed, choices = adjust_widths(
            mutator, choices, fur, budget, num_changed=3, step=0.2)
        assert len(widened) == len(narrowed) == 3
        assert abs(mutator.estimate(choices)['flops'] / budget - 1) <= 0.01
        mutator.set_choices(choices)
    model.eval()
    static = mutator.export_static()
    inputs = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(static(inputs, mode='tensor'),
                              model(inputs, mode='tensor'), atol=1e-4)
