"""DMaskingNAS: masked supernet, differentiable cost, architecture steps."""
import json
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.registry import DefaultScope
from mmpretrain.models import ImageClassifier
from mmpretrain.structures import DataSample
from torch import nn

from mmchansearch.channel_cfg import (
    ChannelConfig,
    load_channel_cfg,
    save_channel_cfg,
    validate_channels,
)
from mmchansearch.engine.batch_norm import recalibrate_bn
from mmchansearch.engine.dmasking_search import DMaskingNASSearchLoop
from mmchansearch.errors import BudgetError, ConfigError, NonFiniteError
from mmchansearch.export import (
    export_subnet,
    load_static_model,
    save_static_checkpoint,
)
from mmchansearch.latency_table import LatencyTable, measurement_meta
from mmchansearch.models.algorithms import DMaskingNAS
from mmchansearch.mutator import ChannelMutator
from mmchansearch.optim import SeparateOptimWrapperConstructor
from mmchansearch.registry import MODELS
from mmchansearch.resolution import interleave, subsample
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


def test_cost_of_one_hot_widths_is_fvcores_count_of_the_subnet(
        model, count_flops):
    """The differentiable cost at one candidate per group is what fvcore
    counts on the exported static subnet (conv + linear MACs)."""
    rng = random.Random(1)
    inputs = torch.randn(1, 3, 32, 32)
    model.masks.clear()
    try:
        for _ in range(3):
            choices = {g: rng.choice(c) for g, c in model.options.items()}
            soft = {g: torch.tensor(float(w)) for g, w in choices.items()}
            static = export_subnet(model, ChannelConfig(dict(choices)))
            assert float(model.cost(soft)) == count_flops(static, inputs)
    finally:
        model.mutator.set_choices(model.mutator.max_widths)


class TwoConvs(nn.Module):
    """conv1 3->16 (3x3, 8x8 out), conv2 16->24 (3x3, stride 2, 4x4 out),
    no biases: the tiny backbone of the hand-counted soft cost."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 24, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(24)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        x = torch.relu(self.bn1(self.conv1(x)))
        return (torch.relu(self.bn2(self.conv2(x))), )


TWO_CONVS_CANDIDATES = {'backbone.conv1': [4, 8, 16],
                        'backbone.conv2': [8, 16, 24]}


def _hand_cost(c1: float, c2: float) -> dict[str, float]:
    """TwoConvs + GAP + a 10-class linear head at 3x8x8 by hand, for
    (expected) widths c1 of conv1 and c2 of conv2."""
    flops = (3 * 3 * 3 * c1 * 8 * 8        # conv1
             + 3 * 3 * c1 * c2 * 4 * 4     # conv2
             + c2 * 10)                     # head fc
    params = (3 * 3 * 3 * c1 + 2 * c1      # conv1, bn1
              + 3 * 3 * c1 * c2 + 2 * c2   # conv2, bn2
              + c2 * 10 + 10)               # head fc, its bias
    return dict(flops=flops, params=params)


@pytest.mark.parametrize('cost_metric', ['flops', 'params'])
def test_cost_of_soft_masks_is_bilinear_in_expected_widths(
        monkeypatch, cost_metric):
    """With the masks' weights softmax(alpha / tau) (the Gumbel noise
    taken out), the expected cost is the hand count at the expected widths
    sum_i w_i C_i: FLOPs and params are bilinear in the widths of the two
    groups, which are independent, so E[c1 c2] = E[c1] E[c2]."""
    torch.manual_seed(0)
    architecture = ImageClassifier(
        backbone=TwoConvs(), neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=24))
    model = DMaskingNAS(
        architecture, dict(type='ChannelMutator', input_shape=(3, 8, 8)),
        candidates=TWO_CONVS_CANDIDATES, cost_metric=cost_metric,
        cost_network='expected', tau=2.0)
    assert model.searched == list(TWO_CONVS_CANDIDATES)
    alphas = {'backbone.conv1': [0.3, -1.0, 1.2],
              'backbone.conv2': [-0.4, 0.9, 0.1]}
    with torch.no_grad():
        for group, alpha in zip(model.searched, model.arch_params):
            alpha.copy_(torch.tensor(alphas[group]))
    monkeypatch.setattr(torch.nn.functional, 'gumbel_softmax',
                        lambda logits, tau: torch.softmax(logits / tau, -1))
    expected = {}
    for group, widths in TWO_CONVS_CANDIDATES.items():
        weights = torch.softmax(torch.tensor(alphas[group]) / 2.0, -1)
        expected[group] = sum(float(w) * c for w, c in zip(weights, widths))
    assert not any(e in TWO_CONVS_CANDIDATES[g] for g, e in expected.items())
    cost = model.sample_architecture()
    model.clear_architecture()
    assert float(cost) == pytest.approx(_hand_cost(*expected.values())[
        cost_metric], rel=1e-6)


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
    assert {'arch_loss', 'arch_ce', 'arch_flops'} <= set(log_vars)


def test_strong_cost_weight_shrinks_to_the_budget(quarter_resnet_cfg):
    """Architecture steps alone, cost on the expected widths."""
    probe = _build(quarter_resnet_cfg)
    widest = probe.mutator.estimate(probe.mutator.max_widths)['flops']
    target = 0.4 * widest
    model = _build(quarter_resnet_cfg, target=target, cost_weight=20.0,
                   tau=1.0, cost_network='expected').train()
    optimizers = _optimizers(model, 0.2)
    for _ in range(40):
        model.arch_step(_batch(4), optimizers)
    derived = model.mutator.estimate(model.derived_choices())['flops']
    assert derived < 0.7 * widest
    assert abs(derived / target - 1) < 0.25


@pytest.mark.parametrize('cost_network', ['sampled', 'derived'])
def test_discrete_cost_networks(quarter_resnet_cfg, cost_network):
    """The cost widths are one candidate per group (the Gumbel sample, or
    the argmax of alpha), yet the gradient reaches every alpha."""
    model = _build(quarter_resnet_cfg, cost_network=cost_network).train()
    with torch.no_grad():
        for alpha in model.arch_params:
            alpha.normal_()
    widths = model.sample_masks()
    derived = model.derived_choices()
    for group in model.searched:
        width = float(widths[group].detach())
        assert min(abs(width - c) for c in model.options[group]) < 1e-4
        if cost_network == 'derived':
            assert width == pytest.approx(derived[group])
    model.cost(widths).backward()
    for alpha in model.arch_params:
        assert alpha.grad is not None and alpha.grad.abs().sum() > 0
    model.masks.clear()


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
    (dict(target=1e3), BudgetError, 'below the cheapest network'),
    (dict(loss_form='exp'), ConfigError, 'loss_form'),
    (dict(cost_network='mean'), ConfigError, 'cost_network'),
])
def test_bad_settings_are_refused(quarter_resnet_cfg, kwargs, error, needle):
    with pytest.raises(error, match=needle):
        _build(quarter_resnet_cfg, **kwargs)


# --------------------------------------------- the search, end to end
SEARCH = REPO / 'configs' / 'dmasking' / \
    'dmasking_mbv2_1.0x_search_1xb64_fashion-mnist.py'


def _search_options(differentiable_search_options, root,
                    epochs: int) -> list[str]:
    """The shared tiny-data options, this config's validation data, and
    one warm-up epoch (the config has two)."""
    return differentiable_search_options(root, epochs) + [
        f'val_dataloader.dataset.data_root={root}',
        'train_cfg.warmup_epochs=1', 'val_cfg.calibrate_bn_batches=2',
    ]


def test_search_writes_results_and_resumes(
        tmp_path, make_fashion_mnist, run_tool,
        differentiable_search_options):
    root = make_fashion_mnist(tmp_path / 'data', 96, 32)
    work_dir = tmp_path / 'search'
    run_tool('tools/search.py', SEARCH, '--work-dir', work_dir,
             '--cfg-options',
             *_search_options(differentiable_search_options, root, 2))
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
    assert history[1]['tau'] == pytest.approx(5.0 * 0.7)
    assert (work_dir / 'arch_distributions.png').stat().st_size > 0
    # the architecture trained in epoch 1 only (epoch 0 is warm-up)
    assert history[0]['probabilities'] != history[1]['probabilities']
    run_tool('tools/search.py', SEARCH, '--work-dir', work_dir, '--resume',
             '--cfg-options',
             *_search_options(differentiable_search_options, root, 3))
    log = sorted(work_dir.glob('2*/*.log'))[-1].read_text()
    assert 'resumed epoch: 2' in log
    history = json.loads((work_dir / 'arch_history.json').read_text())
    assert [h['epoch'] for h in history] == [0, 1, 2]


def test_killed_search_resumes_to_the_same_result(
        tmp_path, make_fashion_mnist, run_tool, kill_when,
        differentiable_search_options, final_state):
    """kill -9 in the last of three epochs (one warm-up), --resume: the
    derived network, the distributions and every weight and architecture
    parameter are the uninterrupted run's. The Gumbel noise continues from
    the checkpoint's generator state; the architecture's split (2 batches
    for 3 steps an epoch, so a cycle ends mid-epoch) is read from its start
    every epoch."""
    root = make_fashion_mnist(tmp_path / 'data', 96, 32)
    options = ['--cfg-options',
               *_search_options(differentiable_search_options, root, 3),
               'train_cfg.arch_dataloader.dataset.stop=80']
    straight, killed = tmp_path / 'straight', tmp_path / 'killed'
    run_tool('tools/search.py', SEARCH, '--work-dir', straight, *options)
    kill_when(lambda: (killed / 'epoch_2.pth').exists(), 'tools/search.py',
              SEARCH, '--work-dir', killed, *options)
    assert not (killed / 'derived.yaml').exists()
    run_tool('tools/search.py', SEARCH, '--work-dir', killed, '--resume',
             *options)
    derived = load_channel_cfg(killed / 'derived.yaml')
    expected = load_channel_cfg(straight / 'derived.yaml')
    assert derived.channels == expected.channels
    assert derived.meta['flops'] == expected.meta['flops']
    for name in ('distributions.json', 'arch_history.json'):
        assert json.loads((killed / name).read_text()) == \
            json.loads((straight / name).read_text()), name
    resumed, reference = final_state(killed), final_state(straight)
    assert resumed.keys() == reference.keys()
    for key, value in reference.items():
        assert torch.equal(resumed[key], value), key


def _calibrated_checkpoint(root: Path, path: Path) -> Path:
    """The search config's initial DMaskingNAS, its BN running statistics
    recalibrated on the first 48 training images under ``root`` (those of
    the weights' split); saved for ``load_from``."""
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        torch.manual_seed(0)
        model = MODELS.build(Config.fromfile(SEARCH).model)
    raw = (root / 'train-images-idx3-ubyte').read_bytes()[16:]
    images = torch.from_numpy(np.frombuffer(raw, np.uint8).copy())
    images = F.interpolate(images.view(-1, 1, 28, 28)[:48].float(), size=32,
                           mode='bilinear').round().to(torch.uint8)
    images = images.repeat(1, 3, 1, 1)
    recalibrate_bn(model, [dict(inputs=list(images[i:i + 16]))
                           for i in range(0, 48, 16)], 3)
    torch.save(dict(state_dict=model.state_dict()), path)
    return path


def test_search_on_two_processes_matches_one(
        tmp_path, make_fashion_mnist, run_tool, run_torchrun,
        differentiable_search_options):
    """torchrun with 2 gloo processes at 8 images a rank vs 1 process at
    16: each step sees the same 16 images (the distributed sampler deals
    the one-process order out to the ranks), every rank draws the one
    process's Gumbel noise (the same seed on every rank) and the weight and
    architecture gradients are averaged over the ranks.

    Batch norm in training mode cannot match by design: each rank
    normalizes with its own 8 images' statistics (mmengine's DDP without
    SyncBN; the search config's default). Measured with the options below
    but BN training: max total-variation distance (TV) 0.076 between the
    two runs' distributions of a group, as far as the distributions moved
    from uniform in all (0.067), 20 of 25 derived widths differ, 2.04M vs
    2.67M FLOPs: Adam's first steps follow the sign of the gradient, which
    the per-rank statistics flip. So this test freezes BN (``norm_eval``,
    statistics recalibrated on the weights' split, from ``load_from``):
    then the runs differ by float summation order only. Measured: the
    same derived widths and FLOPs, max TV 8.7e-4 (Adam turns float noise
    in near-zero gradients into steps of its learning rate); required:
    the same derived.yaml and TV <= 5e-3 in every group. Broken on
    purpose, the 2-process run moved away by far more: architecture
    gradients not averaged, TV 0.023 (6 widths differ); each rank its own
    Gumbel noise, TV 0.041 (9 widths differ); ``randomness.diff_rank_seed
    =True``, TV 0.048 (22 widths differ)."""
    root = make_fashion_mnist(tmp_path / 'data', 96, 32)
    checkpoint = _calibrated_checkpoint(root, tmp_path / 'bn.pth')
    options = [*_search_options(differentiable_search_options, root, 2),
               'model.architecture.backbone.norm_eval=True',
               f'load_from={checkpoint}']

    def per_rank(batch: int) -> list[str]:
        return [*options, f'train_dataloader.batch_size={batch}',
                f'train_cfg.arch_dataloader.batch_size={batch}']

    one, two = tmp_path / 'one', tmp_path / 'two'
    run_tool('tools/search.py', SEARCH, '--work-dir', one, '--cfg-options',
             *per_rank(16))
    run_torchrun(2, 'tools/search.py', SEARCH, '--work-dir', two,
                 '--cfg-options', *per_rank(8))
    assert (two / 'derived.yaml').read_text() == \
        (one / 'derived.yaml').read_text()
    single, double = (json.loads((d / 'distributions.json').read_text())
                      for d in (one, two))
    assert double.keys() == single.keys()
    for group, entry in single.items():
        assert double[group]['candidates'] == entry['candidates']
        tv = sum(abs(p - q) for p, q in zip(
            double[group]['probabilities'], entry['probabilities'])) / 2
        assert tv <= 5e-3, group


def test_a_diverged_training_stops_before_any_result(
        tmp_path, make_fashion_mnist, run_tool, differentiable_search_options):
    root = make_fashion_mnist(tmp_path / 'data', 96, 32)
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        model = MODELS.build(Config.fromfile(SEARCH).model)
    with torch.no_grad():
        next(model.architecture.parameters()).fill_(float('nan'))
    broken = tmp_path / 'nan.pth'
    torch.save(dict(state_dict=model.state_dict()), broken)
    work_dir = tmp_path / 'search'
    result = run_tool('tools/search.py', SEARCH, '--work-dir', work_dir,
                      '--cfg-options',
                      *_search_options(differentiable_search_options, root, 1),
                      f'load_from={broken}', check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    assert 'error: search training, epoch 1 iteration 1: non-finite ' \
        'loss = nan, weights_loss = nan' in result.stderr
    assert 'check the weights of load_from' in result.stderr
    assert 'Traceback' not in result.stderr
    assert not (work_dir / 'derived.yaml').exists()
    assert not list(work_dir.glob('*.pth'))


def test_nan_architecture_parameters_derive_nothing(quarter_resnet_cfg,
                                                    tmp_path):
    model = _build(quarter_resnet_cfg)
    with torch.no_grad():
        model.arch_params[0][1] = float('nan')
    trained = SimpleNamespace(model=model, work_dir=str(tmp_path),
                              train=lambda: None)
    with pytest.raises(NonFiniteError, match=r'deriving the network: '
                       r'non-finite architecture parameters of \S+ = 1 of '
                       r'\d+ values NaN/inf'):
        DMaskingNASSearchLoop(trained).run()
    assert not list(tmp_path.iterdir())


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


# ------------------------------------------------------ resolution search
RESOLUTIONS = [16, 24, 32]


@pytest.fixture(scope='module')
def res_model(quarter_resnet_cfg, randomize_bn):
    model = _build(quarter_resnet_cfg, resolutions=RESOLUTIONS)
    randomize_bn(model)
    return model.eval()


def test_subsample_and_interleave_are_inverse():
    x = torch.randn(2, 3, 12, 12)
    small = subsample(x, (5, 5))
    canvas = interleave(small, (12, 12))
    assert canvas.shape == x.shape
    assert torch.equal(subsample(canvas, (5, 5)), small)
    assert int((canvas != 0).sum()) == 2 * 3 * 25  # zeros between pixels


@pytest.mark.parametrize('resolution', RESOLUTIONS)
def test_one_hot_resolution_equals_static_subnet_on_subsampled_input(
        res_model, resolution):
    """One-hot channel masks and a one-hot resolution give exactly the
    static subnet run on the input sub-sampled to that resolution, which
    is also what the retrained network (``resolution`` set) runs."""
    model = res_model
    inputs = torch.randn(2, 3, 32, 32)
    model.mutator.set_choices(model.mutator.max_widths)
    choices = _one_hot_masks(model, random.Random(resolution))
    model.resolution_mixer.weights = model.resolution_mixer.one_hot(
        resolution)
    with torch.no_grad():
        masked = model(inputs, mode='tensor')
        model.masks.clear()
        model.resolution_mixer.weights = None
        model.mutator.set_choices(choices)
        static = model.mutator.export_static().eval()
        small = subsample(inputs, (resolution, resolution))
        expected = static(small, mode='tensor')
        full = static(inputs, mode='tensor')
        model.resolution = resolution  # the retraining path
        retrained = model(inputs, mode='tensor')
        model.resolution = None
    model.mutator.set_choices(model.mutator.max_widths)
    torch.testing.assert_close(masked, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(retrained, expected, atol=1e-5, rtol=0)
    if resolution < 32:
        assert not torch.allclose(masked, full, atol=1e-3)


def test_cost_of_one_hot_resolution_is_the_estimate_there(
        res_model, quarter_resnet_cfg):
    model, rng = res_model, random.Random(3)
    for index, resolution in enumerate(RESOLUTIONS):
        mutator = ChannelMutator(**{k: v for k, v in MUTATOR.items()
                                    if k != 'type'} | dict(
            input_shape=(3, resolution, resolution)))
        mutator.prepare(MODELS.build(quarter_resnet_cfg))
        one_hot = torch.zeros(len(RESOLUTIONS))
        one_hot[index] = 1
        for _ in range(3):
            choices = {g: rng.choice(c) for g, c in model.options.items()}
            soft = {g: torch.tensor(float(w)) for g, w in choices.items()}
            cost = model.cost(soft, model.expected_positions(one_hot))
            expected = mutator.estimate(choices)['flops']
            assert float(cost) == pytest.approx(expected, rel=1e-9)
            assert model.usage(choices, resolution)['flops'] == \
                pytest.approx(expected, rel=1e-9)


def test_resolution_gradients_and_expected_cost(quarter_resnet_cfg):
    """A soft step reaches the resolution's alpha; the cost is linear in
    the resolution weights."""
    model = _build(quarter_resnet_cfg, resolutions=RESOLUTIONS,
                   cost_network='expected').train()
    optimizers = _optimizers(model, 0.1)
    before = model.arch_params[-1].detach().clone()
    model.arch_step(_batch(4), optimizers)
    assert not torch.equal(before, model.arch_params[-1])
    assert model.resolution_mixer.weights is None  # cleared after a step
    widths = {g: c[-1] for g, c in model.options.items()}
    weights = torch.tensor([0.2, 0.3, 0.5])
    mixed = model.cost(widths, model.expected_positions(weights))
    parts = [model.usage(widths, r)['flops'] for r in RESOLUTIONS]
    assert float(mixed) == pytest.approx(
        sum(w * p for w, p in zip(weights.tolist(), parts)))


@pytest.mark.parametrize('resolutions, needle', [
    ([], 'non-empty list'),
    ([16, 40], r'40 is not an input size in \[1, 32\]'),
    ([0], r'0 is not an input size'),
    ([16.5], r'16.5 is not an input size'),
])
def test_bad_resolutions_are_refused(quarter_resnet_cfg, resolutions,
                                     needle):
    with pytest.raises(ConfigError, match=needle):
        _build(quarter_resnet_cfg, resolutions=resolutions)


def test_derived_channel_cfg_carries_the_resolution(res_model, tmp_path):
    model = res_model
    with torch.no_grad():
        model.arch_params[-1].copy_(torch.tensor([0.0, 3.0, 0.0]))
    try:
        cfg = model.derived_channel_cfg('m.py', target=1e6)
    finally:
        with torch.no_grad():
            model.arch_params[-1].zero_()
    assert cfg.resolution == 24
    assert cfg.meta['input_shape'] == [3, 24, 24]
    choices = model.derived_choices()
    assert cfg.meta['flops'] == model.usage(choices, 24)['flops']
    assert cfg.meta['flops'] < model.usage(choices)['flops']
    save_channel_cfg(cfg, tmp_path / 'derived.yaml')
    loaded = load_channel_cfg(tmp_path / 'derived.yaml')
    assert loaded.resolution == 24 and loaded.channels == cfg.channels


# ------------------------------------------------------ the ImageNet config
def test_imagenet_config_builds():
    cfg = Config.fromfile(str(REPO / 'configs' / 'dmasking' /
                              'dmasking_mbv2_1.4x_search_8xb64_in1k.py'))
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        model = MODELS.build(cfg.model)
    assert isinstance(model, DMaskingNAS)
    assert model.target == 300e6
    smallest = model.mutator.estimate(
        {g: c[0] for g, c in model.options.items()})['flops']
    assert smallest < model.target < model.widest_cost
    weights = cfg.train_dataloader.dataset
    arch = cfg.train_cfg.arch_dataloader.dataset
    assert weights.stop == arch.start and arch.stop is None
    assert weights.permute_seed == arch.permute_seed
    # a `_delete_` with nothing to delete stays, and the loop refuses it
    assert '_delete_' not in cfg.train_cfg


def test_retrain_and_export_run_at_the_resolution(tmp_path):
    """A derived channel_cfg with ``resolution``: the retraining model
    (SlimmableNetwork, one subnet) sub-samples its inputs to it, the static
    checkpoint records that input shape and reloads; inputs smaller than
    the resolution are a clear error."""
    subnet_config = REPO / 'configs' / 'autoslim' / \
        'autoslim_mbv2_1.0x_subnet_1xb64_fashion-mnist.py'
    cfg = Config.fromfile(str(subnet_config))
    probe = build_supernet(cfg)
    channels = probe.mutator.uniform_choices(0.5, 8)
    cfg.model.channel_cfgs = [dict(channels=channels, resolution=24)]
    torch.manual_seed(0)
    model = build_supernet(cfg, keep_algorithm=True).eval()
    inputs = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        logits = model(inputs, mode='tensor')
        expected = model.architecture(subsample(inputs, (24, 24)),
                                      mode='tensor')
    torch.testing.assert_close(logits, expected, atol=0, rtol=0)
    path = tmp_path / 'subnet.pth'
    channel_cfg = model.channel_cfgs[0]
    save_static_checkpoint(model.architecture, channel_cfg, (3, 32, 32),
                           str(path))
    assert torch.load(path)['meta']['input_shape'] == [3, 24, 24]
    static = load_static_model(str(subnet_config), str(path))
    with torch.no_grad():
        torch.testing.assert_close(
            static(subsample(inputs, (24, 24)), mode='tensor'), expected,
            atol=1e-6, rtol=0)
    with pytest.raises(ConfigError, match='resolution 24 is above the '
                       'input size'):
        model(torch.randn(1, 3, 16, 16), mode='tensor')


# ------------------------------------------------------ latency as cost
@pytest.fixture(scope='module')
def latency_table(quarter_resnet_cfg, tmp_path_factory):
    """A made-up table of the quarter ResNet's ops (ms grow with size)."""
    probe = _build(quarter_resnet_cfg)
    entries = {}
    for op in probe.latency_ops():
        module = op.build()
        entries[op.signature] = 1e-6 * module.weight.numel() * (
            op.input_shape[-1] if len(op.input_shape) > 1 else 1) + 0.01
    path = tmp_path_factory.mktemp('lut') / 'lut.json'
    LatencyTable(entries, measurement_meta('cpu')).save(path)
    return str(path)


def _latency_model(cfg: dict, table: str, **kwargs) -> DMaskingNAS:
    torch.manual_seed(0)
    return DMaskingNAS(cfg, dict(MUTATOR, latency_table=table),
                       cost_metric='latency', **kwargs)


def test_latency_cost_is_the_tables_and_trains_alpha(quarter_resnet_cfg,
                                                     latency_table):
    model = _latency_model(quarter_resnet_cfg, latency_table,
                           cost_network='expected').train()
    rng = random.Random(3)
    for _ in range(3):
        choices = {g: rng.choice(c) for g, c in model.options.items()}
        soft = {g: torch.tensor(float(w)) for g, w in choices.items()}
        assert float(model.cost(soft)) == pytest.approx(
            model.mutator.estimate(choices)['latency'])
    optim = _optimizers(model, 0.05)
    before = [a.detach().clone() for a in model.arch_params]
    log_vars = model.arch_step(_batch(), optim)
    assert 'arch_latency' in log_vars
    assert all(not torch.equal(a, b)
               for a, b in zip(before, model.arch_params))


@pytest.mark.parametrize('kwargs, needle', [
    (dict(), "needs the mutator's latency_table"),
    (dict(resolutions=[24, 32]), 'one input size'),
])
def test_latency_cost_needs_a_table_and_one_resolution(
        quarter_resnet_cfg, latency_table, kwargs, needle):
    table = latency_table if kwargs else None
    with pytest.raises(ConfigError, match=needle):
        _latency_model(quarter_resnet_cfg, table, **kwargs)


@pytest.mark.parametrize('name', ['mobilenet_v2', 'mobilenet_v3_small',
                                  'resnet50'])
def test_one_hot_masks_on_the_analyzed_classifiers(name, classifier_cfg,
                                                   randomize_bn):
    model = _build(classifier_cfg(name))
    randomize_bn(model)
    model.eval()
    inputs = torch.randn(2, 3, 32, 32)
    choices = _one_hot_masks(model, random.Random(4))
    with torch.no_grad():
        masked = model(inputs, mode='tensor')
        model.masks.clear()
        model.mutator.set_choices(choices)
        expected = model.mutator.export_static().eval()(inputs,
                                                        mode='tensor')
    assert torch.allclose(masked, expected, atol=1e-4)
