"""ReXNet channel parameterization search: the space, budget, loop.

The loop runs through ``tools/search.py`` on tiny Fashion-MNIST-format data
made here (a 6-block ReXNet, two candidates of one short epoch).
"""
import csv
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmchansearch.channel_cfg import (
    ChannelConfig,
    load_channel_cfg,
    save_channel_cfg,
)
from mmchansearch.engine.rexnet_search import (
    STATE_FILE,
    ReXNetBudget,
    ReXNetSearchLoop,
    curve_channels,
    fit_line,
    split_jobs,
    stagewise_knots,
)
from mmchansearch.errors import BudgetError, ConfigError, NonFiniteError
from mmchansearch.models.backbones.rexnet import ReXNet, block_names
from mmchansearch.mutator import ChannelMutator
from mmchansearch.registry import MODELS

REPO = Path(__file__).resolve().parents[1]
SEARCH = REPO / 'configs' / 'rexnet' / 'rexnet_search_1xb64_fashion-mnist.py'
STAGES = (1, 1, 1, 1, 1, 1)
N_TRAIN, N_HELDOUT, N_TEST = 32, 16, 8
MODEL = dict(
    type='ImageClassifier',
    backbone=dict(type='ReXNet', widen_factor=0.25, stage_blocks=STAGES),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=320))


@pytest.fixture(autouse=True)
def scope():
    """Types resolve as in the toolbox's configs (default_scope)."""
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        yield


def _loop(tmp_path, **kwargs) -> ReXNetSearchLoop:
    runner = SimpleNamespace(cfg=Config(dict(model=MODEL)),
                             work_dir=str(tmp_path))
    kwargs = dict(dict(input_shape=(3, 32, 32), divisor=8,
                       first_channels=(8, 32), increase=(16, 96)), **kwargs)
    return ReXNetSearchLoop(runner, **kwargs)


# --------------------------------------------------------------- backbone
def test_backbone_takes_explicit_widths_and_depth():
    model = ReXNet(widen_factor=0.25, stage_blocks=(1, 2, 2, 3, 4, 6),
                   block_channels=list(range(16, 34)))
    blocks = [b for stage in model.stages for b in stage]
    assert len(blocks) == 18
    assert [b.out_channels for b in blocks] == list(range(16, 34))
    assert model.eval()(torch.zeros(1, 3, 32, 32))[0].shape == (1, 320, 1, 1)


@pytest.mark.parametrize('kwargs, match', [
    (dict(block_channels=[16, 24, 20, 32, 40, 48]), 'non-decreasing'),
    (dict(block_channels=[16, 24]), '6 blocks'),
    (dict(stage_blocks=(1, 2)), 'stage_blocks'),
])
def test_backbone_refuses_bad_widths(kwargs, match):
    kwargs.setdefault('stage_blocks', STAGES)
    with pytest.raises(ConfigError, match=match):
        ReXNet(**kwargs)


# ------------------------------------------------------- parameterization
def test_stagewise_baseline_is_representable():
    # MobileNetV2-like steps over ReXNet's six stages
    target = [16, 24, 24, 32, 32, 64, 64, 64, 96, 96, 96, *[160] * 5]
    stage_widths = [16, 24, 32, 64, 96, 160]
    values = [(w - 16) / 144 for w in stage_widths]
    knots = stagewise_knots((1, 2, 2, 3, 3, 5), values)
    assert curve_channels(144, 16, knots, 16) == target
    ReXNet(block_channels=target)  # a valid backbone


def test_linear_fit_recovers_an_exact_line():
    lines = [[3 * i + 10 for i in range(8)], [3 * i + 10 for i in range(8)]]
    slope, intercept = fit_line(lines)
    assert slope == pytest.approx(3)
    assert intercept == pytest.approx(10)


@pytest.mark.parametrize('world_size', [1, 2, 3, 4])
def test_jobs_split_across_ranks_exactly_once(world_size):
    jobs = [(c, s) for c in range(5) for s in (0, 1, 2)]
    shares = [split_jobs(jobs, r, world_size) for r in range(world_size)]
    assert sorted(j for share in shares for j in share) == sorted(jobs)
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


# ----------------------------------------------------------------- budget
def test_sampled_candidates_are_monotone_and_within_limits(tmp_path):
    limits = dict(max_flops=1.5e6, max_params=0.25e6, min_flops=1.1e6)
    loop = _loop(tmp_path, num_candidates=6, stagewise_prob=0.3, **limits)
    candidates = loop.sample_candidates()
    budget = ReXNetBudget(MODEL, (3, 32, 32))
    assert len({tuple(c['channels']) for c in candidates}) == 6
    for cand in candidates:
        channels = cand['channels']
        assert len(channels) == 6
        assert channels == sorted(channels)
        assert all(c % 8 == 0 for c in channels)
        usage = budget.estimate(channels)
        assert usage['flops'] == cand['flops']
        assert limits['min_flops'] <= usage['flops'] <= limits['max_flops']
        assert usage['params'] <= limits['max_params']


def test_infeasible_limits_name_the_smallest_network(tmp_path):
    loop = _loop(tmp_path, num_candidates=2, max_flops=1e5)
    smallest = ReXNetBudget(MODEL, (3, 32, 32)).estimate(
        [8, 8, 8, 8, 8, 24])['flops']
    with pytest.raises(BudgetError, match=f'{smallest:g} FLOPs'):
        loop.sample_candidates()


def test_a_diverged_candidate_stops_the_search_before_best(tmp_path):
    loop = _loop(tmp_path, num_candidates=2, seeds=1, max_flops=1.5e6,
                 max_params=0.25e6, min_flops=1.1e6)
    loop._train = lambda candidate, seed: \
        float('nan') if candidate['index'] == 1 else 50.0
    with pytest.raises(NonFiniteError,
                       match=r'accuracy/top1 of candidate 1 seed 0 = nan.*'
                       'lower the learning rate'):
        loop.run()
    assert not (tmp_path / 'best.yaml').exists()
    assert not (tmp_path / 'candidates.csv').exists()
    state = json.loads((tmp_path / STATE_FILE).read_text())
    assert state['results'] == {'0/0': 50.0}  # --resume retrains job 1/0


def test_loop_refuses_other_backbones(tmp_path):
    runner = SimpleNamespace(cfg=Config(dict(model=dict(
        MODEL, backbone=dict(type='ResNet', depth=18)))),
        work_dir=str(tmp_path))
    with pytest.raises(ConfigError, match='ReXNet'):
        ReXNetSearchLoop(runner)


# ------------------------------------------------------------ end to end
@pytest.fixture(scope='module')
def options(rexnet_search_options) -> Callable[[Path], list[str]]:
    """``options(root)``: the search on the tiny data under ``root``,
    within the limits of its six one-block stages at 32x32."""
    return lambda root: rexnet_search_options(
        root, N_TRAIN, N_HELDOUT,
        max_flops=1.5e6, max_params=0.25e6, min_flops=1.0e6)


@pytest.fixture(scope='module')
def search(tmp_path_factory, make_fashion_mnist, run_tool, options):
    tmp = tmp_path_factory.mktemp('rexnet_search')
    root = make_fashion_mnist(tmp / 'data', N_TRAIN + N_HELDOUT, N_TEST)
    work_dir = tmp / 'search'
    run_tool('tools/search.py', SEARCH, '--work-dir', work_dir,
             '--cfg-options', *options(root), 'search_loop.patience=1')
    return dict(tmp=tmp, root=root, work_dir=work_dir)


def test_search_writes_candidates_best_and_plot(search):
    work_dir = search['work_dir']
    state = json.loads((work_dir / STATE_FILE).read_text())
    assert len(state['candidates']) == 2 and len(state['results']) == 2
    rows = list(csv.DictReader(
        line for line in (work_dir / 'candidates.csv').read_text(
        ).splitlines() if not line.startswith('#')))
    assert len(rows) == 2
    assert {'a', 'b', 'knots', 'channels', 'flops', 'params',
            'accuracy/top1_mean', 'accuracy/top1_std'} <= set(rows[0])
    best = load_channel_cfg(work_dir / 'best.yaml')  # a channel_cfg
    widths = [int(c) for c in rows[0]['channels'].split()]
    assert best.blocks == {f'backbone.stages.{s}.0': w
                           for s, w in enumerate(widths)}
    assert 0 <= best.meta['accuracy_mean'] <= 100
    assert best.meta['flops'] <= 1.5e6
    # the channels: are the groups of that network at full width
    plain = MODELS.build(dict(MODEL, backbone=dict(
        MODEL['backbone'], block_channels=widths)))
    mutator = ChannelMutator(input_shape=(3, 32, 32))
    mutator.prepare(plain)
    assert best.channels == mutator.max_widths
    assert 'fit_slope' in state['summary']
    assert (work_dir / 'channel_curves.png').stat().st_size > 0


def test_resume_trains_only_the_missing_job(search, run_tool, options):
    work_dir = search['tmp'] / 'resumed'
    shutil.copytree(search['work_dir'], work_dir)
    state_file = work_dir / STATE_FILE
    state = json.loads(state_file.read_text())
    candidates = state['candidates']
    del state['results']['1/0']
    state_file.write_text(json.dumps(state))
    kept = work_dir / 'candidate_0' / 'seed_0'
    kept_files = {p: p.stat().st_mtime_ns for p in kept.rglob('*.pth')}
    # isolate: the retraining runs in a subprocess, as on several ranks
    run_tool('tools/search.py', SEARCH, '--work-dir', work_dir, '--resume',
             '--cfg-options', *options(search['root']),
             'search_loop.patience=1', 'search_loop.isolate=True')
    state = json.loads(state_file.read_text())
    assert state['candidates'] == candidates  # not resampled
    assert set(state['results']) == {'0/0', '1/0'}
    assert {p: p.stat().st_mtime_ns for p in kept.rglob('*.pth')} == \
        kept_files
    assert not (kept / 'child_result.json').exists()
    assert (work_dir / 'candidate_1' / 'seed_0' / 'child_result.json'
            ).is_file()


def test_killed_search_resumes_to_the_same_values(tmp_path,
                                                  make_fashion_mnist,
                                                  run_tool, kill_when,
                                                  options):
    """kill -9 in the second epoch of the second job, --resume: the killed
    job trains again from its start (the done one is kept), and every
    job's value, the ranking and best.yaml are the uninterrupted run's."""
    root = make_fashion_mnist(tmp_path / 'data', N_TRAIN + N_HELDOUT, N_TEST)
    two_epochs = ['--cfg-options', *options(root), 'train_cfg.max_epochs=2',
                  'param_scheduler.end=2']
    straight, killed = tmp_path / 'straight', tmp_path / 'killed'
    run_tool('tools/search.py', SEARCH, '--work-dir', straight, *two_epochs)
    second = killed / 'candidate_1' / 'seed_0'
    kill_when(lambda: (second / 'last_checkpoint').exists(),
              'tools/search.py', SEARCH, '--work-dir', killed, *two_epochs)
    assert list(json.loads((killed / STATE_FILE).read_text())[
        'results']) == ['0/0']
    run_tool('tools/search.py', SEARCH, '--work-dir', killed, '--resume',
             *two_epochs)
    resumed = json.loads((killed / STATE_FILE).read_text())
    expected = json.loads((straight / STATE_FILE).read_text())
    assert resumed['candidates'] == expected['candidates']
    assert resumed['results'] == expected['results']
    assert resumed['summary'] == expected['summary']
    for name in ('best.yaml', 'candidates.csv'):
        assert (killed / name).read_text() == (straight / name).read_text()


def test_search_runs_on_two_cpu_processes(search, run_torchrun, tmp_path,
                                          options):
    """torchrun with 2 gloo processes: each rank trains one candidate (in
    a subprocess, undistributed), rank 0 gathers both results."""
    work_dir = tmp_path / 'dist'
    run_torchrun(2, 'tools/search.py', SEARCH, '--work-dir', work_dir,
                 '--cfg-options', *options(search['root']),
                 'search_loop.patience=1')
    state = json.loads((work_dir / STATE_FILE).read_text())
    single = json.loads((search['work_dir'] / STATE_FILE).read_text())
    assert state['candidates'] == single['candidates']
    assert state['results'] == pytest.approx(single['results'])
    for index in (0, 1):
        job = work_dir / f'candidate_{index}' / 'seed_0'
        assert (job / 'child_result.json').is_file()
        log = next(job.glob('*/*.log')).read_text()
        assert 'Distributed training: False' in log
    assert (work_dir / 'best.yaml').is_file()


def test_a_diverging_schedule_stops_the_search(search, run_tool, tmp_path,
                                               options):
    work_dir = tmp_path / 'diverged'
    result = run_tool('tools/search.py', SEARCH, '--work-dir', work_dir,
                      '--cfg-options', *options(search['root']),
                      'optim_wrapper.optimizer.lr=1e30', check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    assert 'error: ReXNet channel search: non-finite accuracy/top1 of ' \
        'candidate 0 seed 0 = nan' in result.stderr
    assert 'Traceback' not in result.stderr
    assert not (work_dir / 'best.yaml').exists()


def test_retrain_config_builds_the_given_widths(tmp_path):
    """The retrain config takes the result as model.channel_cfgs: the
    search's network at best.yaml's block widths, tested on the real test
    files."""
    cfg = Config.fromfile(SEARCH.with_name(
        'rexnet_retrain_1xb64_fashion-mnist.py'))
    widths = [8, 16, 24, 32, 32, 48, 64, 64]
    names = block_names(cfg.model.architecture.backbone.stage_blocks)
    path = tmp_path / 'best.yaml'
    save_channel_cfg(ChannelConfig({}, blocks={
        f'backbone.{n}': w for n, w in zip(names, widths)}), path)
    cfg.merge_from_dict({'model.channel_cfgs': str(path)})
    assert cfg.search_loop is None
    assert cfg.test_dataloader.dataset.test_mode is True
    assert cfg.train_dataloader.dataset.stop <= \
        cfg.val_dataloader.dataset.start  # validation on held-out images
    model = MODELS.build(cfg.model).eval()
    stages = model.architecture.backbone.stages
    assert [b.out_channels for s in stages for b in s] == widths
    assert model(torch.zeros(2, 3, 32, 32), mode='tensor').shape == (2, 10)
