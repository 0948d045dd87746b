"""DMaskingNAS: masked supernet, differentiable cost, architecture steps."""
import json
import random
from pathlib import Path

import pytest
import torch
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmpretrain.structures import DataSample

from mmchansearch.channel_cfg import load_channel_cfg, validate_channels
from mmchansearch.errors import BudgetError, ConfigError
from mmchansearch.models.algorithms import DMaskingNAS
from mmchansearch.optim import SeparateOptimWrapperConstructor
from mmchansearch.supernet import build_supernet

REPO = Path(__file__).resolve().parents[1]

MUTATOR = dict(type='ChannelMutator', input_shape=(3, 32, 32),
               width_ratios=[0.25, 0.5, 0.75, 1.0], divisor=8, min_width=8)


def _build(cfg: dict, **kwargs) -> DMaskingNAS:
    torch.manual_seed(0)
    return DMaskingNAS(cfg, dict(MUTATOR), **kwargs)


@pytest.fixture(scope='module')
def model(quarter_resnet_cfg, randomize_bn):
    model = _build(quarter_resnet_cfg)
    randomize_bn(model)
    return model.eval()


def _one_hot_masks(model: DMaskingNAS, rng: random.Random) -> dict:
    """Sets 0/1 masks of random candidates; returns the chosen widths."""
    choices = {g: c[-1] for g, c in model.options.items()}
    for group in model.searched:
        index = rng.randrange(len(model.options[group]))
        choices[group] = model.options[group][index]
        model.masks.masks[group] = getattr(
            model, 'keep_' + group.replace('.', '_'))[index]
    return choices


def test_one_hot_masks_equal_the_static_subnet(model):
    rng = random.Random(0)
    inputs = torch.randn(2, 3, 32, 32)
    for _ in range(3):
        model.mutator.set_choices(model.mutator.max_widths)
        choices = _one_hot_masks(model, rng)
        with torch.no_grad():
            masked = model(inputs, mode='tensor')
            model.masks.clear()
            model.mutator.set_choices(choices)
            static = model.mutator.export_static().eval()
            expected = static(inputs, mode='tensor')
        assert torch.allclose(masked, expected, atol=1e-4)
    model.mutator.set_choices(model.mutator.max_widths)


def test_cost_of_one_hot_widths_is_the_estimate(model):
    rng = random.Random(1)
    for _ in range(5):
        choices = {g: rng.choice(c) for g, c in model.options.items()}
        soft = {g: torch.tensor(float(w)) for g, w in choices.items()}
        assert float(model.cost(soft)) == pytest.approx(
            model.mutator.estimate(choices)['flops'])


def _batch(size: int = 8) -> dict:
    gen = torch.Generator().manual_seed(2)
    return dict(inputs=[torch.randint(0, 255, (3, 32, 32), generator=gen,
                                      dtype=torch.uint8)
                        for _ in range(size)],
                data_samples=[DataSample().set_gt_label(i % 10)
                              for i in range(size)])


def _optimizers(model: DMaskingNAS, arch_lr: float) -> OptimWrapperDict:
    return OptimWrapperDict(
        architecture=OptimWrapper(torch.optim.SGD(
            model.architecture.parameters(), lr=0.01)),
        arch_params=OptimWrapper(torch.optim.Adam(
            model.arch_params.parameters(), lr=arch_lr)))


def test_gradients_reach_every_alpha(quarter_resnet_cfg):
    model = _build(quarter_resnet_cfg).train()
    widths = model.sample_masks()
    data = model.data_preprocessor(_batch(), True)
    logits = model.architecture(data['inputs'], mode='tensor')
    ce = sum(model.architecture.head._get_loss(
        logits, data['data_samples']).values())
    model.cost_loss(ce, model.cost(widths)).backward()
    assert len(model.arch_params) == len(model.searched) == 12
    for alpha in model.arch_params:
        assert alpha.grad is not None and alpha.grad.abs().sum() > 0


def test_weight_steps_leave_alphas_and_arch_steps_leave_weights(
        quarter_resnet_cfg):
    model = _build(quarter_resnet_cfg).train()
    optimizers = _optimizers(model, 0.1)
    alphas = [a.detach().clone() for a in model.arch_params]
    weight = model.architecture.backbone.conv1.weight.detach().clone()
    model.train_step(_batch(), optimizers)
    assert all(torch.equal(a, b) for a, b in zip(alphas, model.arch_params))
    assert not torch.equal(weight, model.architecture.backbone.conv1.weight)
    weight = model.architecture.backbone.conv1.weight.detach().clone()
    log_vars = model.arch_step(_batch(), optimizers)
    assert torch.equal(weight, model.architecture.backbone.conv1.weight)
    assert not all(torch.equal(a, b)
                   for a, b in zip(alphas, model.arch_params))
    assert {'arch_loss', 'arch_ce', 'arch_flops_M'} <= set(log_vars)


def test_strong_cost_weight_shrinks_to_the_budget(quarter_resnet_cfg):
    probe = _build(quarter_resnet_cfg)
    widest = probe.mutator.estimate(probe.mutator.max_widths)['flops']
    target = 0.4 * widest
    model = _build(quarter_resnet_cfg, target=target, cost_weight=20.0,
                   tau=1.0).train()
    optimizers = _optimizers(model, 0.2)
    for _ in range(40):
        model.arch_step(_batch(4), optimizers)
    derived = model.mutator.estimate(model.derived_choices())['flops']
    assert derived < 0.7 * widest
    assert abs(derived / target - 1) < 0.25


def test_multiplicative_loss_grows_with_cost(model):
    mult = DMaskingNAS.cost_loss
    ce = torch.tensor(2.0)
    model.loss_form = 'multiplicative'
    try:
        low = mult(model, ce, torch.tensor(10e6))
        high = mult(model, ce, torch.tensor(30e6))
    finally:
        model.loss_form = 'additive'
    assert high > low > 0


@pytest.mark.parametrize('kwargs, error, needle', [
    (dict(candidates={'backbone.conv1': []}), ConfigError, 'non-empty'),
    (dict(candidates={'backbone.conv1': [8, 64]}), ConfigError,
     r'\[1, 16\]'),
    (dict(candidates={'backbone.nope': [8]}), ConfigError, 'unknown group'),
    (dict(target=1e3), BudgetError, 'below the smallest configuration'),
    (dict(loss_form='exp'), ConfigError, 'loss_form'),
])
def test_bad_settings_are_refused(quarter_resnet_cfg, kwargs, error, needle):
    with pytest.raises(error, match=needle):
        _build(quarter_resnet_cfg, **kwargs)


# --------------------------------------------- the search, end to end
SEARCH = REPO / 'configs' / 'dmasking' / \
    'dmasking_mbv2_1.0x_search_1xb64_fashion-mnist.py'


def _search_options(root, epochs: int) -> list[str]:
    return [
        f'train_dataloader.dataset.dataset.data_root={root}',
        'train_dataloader.dataset.stop=48', 'train_dataloader.batch_size=16',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        f'train_cfg.arch_dataloader.dataset.dataset.data_root={root}',
        'train_cfg.arch_dataloader.dataset.start=48',
        'train_cfg.arch_dataloader.dataset.stop=96',
        'train_cfg.arch_dataloader.batch_size=16',
        'train_cfg.arch_dataloader.num_workers=0',
        'train_cfg.arch_dataloader.persistent_workers=False',
        f'val_dataloader.dataset.data_root={root}',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        f'max_epochs={epochs}', f'train_cfg.max_epochs={epochs}',
        'train_cfg.warmup_epochs=1',
        f'param_scheduler.architecture.end={epochs}',
        'val_cfg.calibrate_bn_batches=2',
    ]


def test_search_writes_results_and_resumes(tmp_path, make_fashion_mnist,
                                           run_tool):
    root = make_fashion_mnist(tmp_path / 'data', 96, 32)
    work_dir = tmp_path / 'search'
    run_tool('tools/search.py', SEARCH, '--work-dir', work_dir,
             '--cfg-options', *_search_options(root, 2))
    cfg = load_channel_cfg(work_dir / 'derived.yaml')
    supernet = build_supernet(str(SEARCH))
    validate_channels(cfg, supernet.mutator.max_widths)
    assert cfg.meta['flops'] == supernet.mutator.estimate(cfg.channels)[
        'flops']
    distributions = json.loads((work_dir / 'distributions.json').read_text())
    for group, entry in distributions.items():
        assert len(entry['candidates']) == len(entry['probabilities'])
        assert sum(entry['probabilities']) == pytest.approx(1.0)
        assert cfg.channels[group] in entry['candidates']
    history = json.loads((work_dir / 'arch_history.json').read_text())
    assert [h['epoch'] for h in history] == [0, 1]
    assert history[1]['tau'] == pytest.approx(5.0 * 0.956)
    assert (work_dir / 'arch_distributions.png').stat().st_size > 0
    # the architecture trained in epoch 1 only (epoch 0 is warm-up)
    assert history[0]['probabilities'] != history[1]['probabilities']
    run_tool('tools/search.py', SEARCH, '--work-dir', work_dir, '--resume',
             '--cfg-options', *_search_options(root, 3))
    log = sorted(work_dir.glob('2*/*.log'))[-1].read_text()
    assert 'resumed epoch: 2' in log
    history = json.loads((work_dir / 'arch_history.json').read_text())
    assert [h['epoch'] for h in history] == [0, 1, 2]


def test_one_optimizer_is_refused(quarter_resnet_cfg):
    model = _build(quarter_resnet_cfg).train()
    single = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    with pytest.raises(ConfigError, match='two optimizers'):
        model.train_step(_batch(), single)


def test_separate_constructor_builds_one_optimizer_per_submodule(
        quarter_resnet_cfg):
    model = _build(quarter_resnet_cfg)
    constructor = SeparateOptimWrapperConstructor(dict(
        architecture=dict(optimizer=dict(type='SGD', lr=0.05)),
        arch_params=dict(optimizer=dict(type='Adam', lr=0.01))))
    wrappers = constructor(model)
    assert set(wrappers.keys()) == {'architecture', 'arch_params'}
    arch_ids = {id(p) for p in model.arch_params.parameters()}
    adam = wrappers['arch_params'].optimizer
    assert {id(p) for g in adam.param_groups for p in g['params']} == \
        arch_ids
    with pytest.raises(ConfigError, match="no submodule 'alphas'"):
        SeparateOptimWrapperConstructor(dict(
            alphas=dict(optimizer=dict(type='Adam', lr=0.01))))(model)


def test_search_refuses_a_checkpoint(tmp_path, run_tool):
    result = run_tool('tools/search.py', SEARCH, tmp_path / 'some.pth',
                      '--work-dir', tmp_path / 'search', check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    assert 'takes no checkpoint' in result.stderr
    assert 'Traceback' not in result.stderr
