"""FBNetV2's search space (FBNetV2SearchSpace) searched by DMaskingNAS:
widths, expansions, kernels and the input resolution, jointly."""
import random
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmchansearch.channel_cfg import (
    ChannelConfig,
    load_channel_cfg,
    save_channel_cfg,
    validate_channels,
)
from mmchansearch.errors import ChannelConfigError, ConfigError
from mmchansearch.export import export_subnet, load_static_model
from mmchansearch.latency_table import LatencyTable, network_ops
from mmchansearch.models.algorithms import DMaskingNAS
from mmchansearch.models.backbones import FBNetV2SearchSpace
from mmchansearch.registry import MODELS
from mmchansearch.resolution import subsample
from mmchansearch.supernet import build_supernet, load_state_strictly

REPO = Path(__file__).resolve().parents[1]
SEARCH = REPO / 'configs' / 'dmasking' / \
    'dmasking_fbnetv2-small_search_1xb64_fashion-mnist.py'
SUBNET = REPO / 'configs' / 'dmasking' / \
    'dmasking_fbnetv2-small_subnet_1xb64_fashion-mnist.py'
IN1K = REPO / 'configs' / 'dmasking' / \
    'dmasking_fbnetv2_search_8xb64_in1k.py'
IN1K_SUBNET = REPO / 'configs' / 'dmasking' / \
    'dmasking_fbnetv2_subnet_8xb32_in1k.py'
SIZE = 16


def _architecture(**backbone) -> dict:
    """A small FBNetV2 space for 16x16 inputs: stem, a stride-1 stage of
    one block, a stride-2 stage of two (the second residual), last conv."""
    space = dict(
        type='FBNetV2SearchSpace',
        stages=[
            dict(blocks=1, stride=1, channels=[8, 16], expansions=[1],
                 kernels=[3, 5]),
            dict(blocks=2, stride=2, channels=[16, 24],
                 expansions=[1.5, 3], kernels=[3, 5]),
        ],
        stem_channels=[8, 16], stem_stride=1, last_channels=[32, 64],
        divisor=4)
    space.update(backbone)
    return dict(type='ImageClassifier', backbone=space,
                neck=dict(type='GlobalAveragePooling'),
                head=dict(type='LinearClsHead', num_classes=5,
                          in_channels=space['last_channels'][-1]
                          if space['last_channels'] else 24))


def _build(architecture: dict | None = None, input_size: int = SIZE,
           **kwargs) -> DMaskingNAS:
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        return DMaskingNAS(
            architecture or _architecture(),
            dict(type='ChannelMutator', input_shape=(3, input_size,
                                                     input_size),
                 width_ratios=[0.5, 1.0]), **kwargs)


@pytest.fixture(scope='module')
def model(randomize_bn):
    model = _build(resolutions=[12, SIZE])
    randomize_bn(model)
    return model.eval()


def _draw(model: DMaskingNAS, rng: random.Random) -> tuple:
    """Random one candidate per decision: (widths, blocks, resolution)."""
    widths = {g: rng.choice(c) for g, c in model.channel_options.items()}
    blocks = {n: rng.choice(model.options[n]) for n in model.block_layers}
    return widths, blocks, rng.choice(model.resolutions or [None])


def _one_hot(options: list, chosen) -> torch.Tensor:
    return torch.tensor([float(c == chosen) for c in options])


def _set_one_hot(model: DMaskingNAS, widths: dict, blocks: dict,
                 resolution: int) -> None:
    """The supernet's masks, kernel weights and resolution weights at one
    candidate each (the max-width network runs, masked)."""
    model.mutator.set_choices(model.mutator.max_widths)
    for group in model.searched_groups:
        index = model.options[group].index(widths[group])
        model.masks.masks[group] = getattr(
            model, 'keep_' + group.replace('.', '_'))[index]
    for name, layer in model.block_layers.items():
        layer.weights = _one_hot(model.options[name], blocks[name])
    model.resolution_mixer.weights = model.resolution_mixer.one_hot(
        resolution)


def _config(widths: dict, blocks: dict, resolution: int) -> ChannelConfig:
    return ChannelConfig(dict(widths), blocks=dict(blocks),
                         resolution=resolution)


def test_the_space_has_one_group_per_stage_and_expansion(model):
    """Groups: stem, every expansion, every stage's stream (the blocks
    after a stage's first add their input), the last conv; their
    candidates are the space's (expansions of the widest input)."""
    assert model.channel_options == {
        'backbone.stem.conv': [8, 16],
        'backbone.layers.0.expand.conv': [16],
        'backbone.layers.0.project.conv': [8, 16],
        'backbone.layers.1.expand.conv': [24, 48],
        'backbone.layers.1.project.conv': [16, 24],
        'backbone.layers.2.expand.conv': [36, 72],
        'backbone.last.conv': [32, 64],
    }
    groups = model.mutator.analysis.groups
    assert groups['backbone.layers.1.project.conv'].producers == [
        'backbone.layers.1.project.conv', 'backbone.layers.2.project.conv']
    assert model.options['backbone.layers.2'] == ['k3', 'k5']
    assert model.searched[-3:] == ['backbone.layers.0', 'backbone.layers.1',
                                   'backbone.layers.2']


def test_one_hot_choices_equal_the_static_network(model):
    """Masks, kernel weights and resolution weights at one candidate each
    give exactly the static network of those widths and kernels, run on
    the input sub-sampled to that resolution."""
    rng = random.Random(0)
    inputs = torch.randn(2, 3, SIZE, SIZE)
    try:
        for _ in range(4):
            widths, blocks, resolution = _draw(model, rng)
            _set_one_hot(model, widths, blocks, resolution)
            with torch.no_grad():
                supernet = model(inputs, mode='tensor')
                model.clear_architecture()
                static = export_subnet(model, _config(widths, blocks,
                                                      resolution))
                expected = static(subsample(inputs, (resolution, ) * 2),
                                  mode='tensor')
            assert static.backbone.kernel_options() == {
                n.removeprefix('backbone.'): [b] for n, b in blocks.items()}
            torch.testing.assert_close(supernet, expected, atol=1e-5,
                                       rtol=1e-5)
    finally:
        model.clear_architecture()
        model.mutator.set_choices(model.mutator.max_widths)


def test_cost_of_one_hot_choices_is_fvcores_count_of_the_static_network(
        model, count_flops):
    """The differentiable cost at one candidate per decision (widths,
    kernels, resolution) is fvcore's conv + linear count of the exported
    static network at that resolution, and its parameter count."""
    rng = random.Random(1)
    mixer = model.resolution_mixer
    try:
        for _ in range(4):
            widths, blocks, resolution = _draw(model, rng)
            soft = {g: torch.tensor(float(w)) for g, w in widths.items()}
            weights = {n: _one_hot(model.options[n], b)
                       for n, b in blocks.items()}
            positions = model.expected_positions(
                _one_hot(mixer.resolutions, resolution))
            estimate = model.mutator.estimator.soft_estimate(
                soft, positions, model.block_weights(weights))
            static = export_subnet(model, _config(widths, blocks,
                                                  resolution))
            inputs = torch.randn(1, 3, resolution, resolution)
            assert float(estimate['flops']) == count_flops(static, inputs)
            assert float(estimate['params']) == sum(
                p.numel() for p in static.parameters())
            assert model.usage(widths, resolution, blocks)['flops'] == \
                count_flops(static, inputs)
    finally:
        model.mutator.set_choices(model.mutator.max_widths)


def test_expected_cost_is_the_effective_shape_by_hand():
    """A space of one block at 4x4: stem 3 -> {2, 4} (3x3), expansion
    {4, 8} (1x1), depthwise k3 / k5, projection -> {2, 4}, linear head to
    2 classes. The cost of Gumbel weights is the FLOPs and params of the
    expected widths, the depthwise candidates weighted by theirs."""
    architecture = dict(
        type='ImageClassifier',
        backbone=dict(
            type='FBNetV2SearchSpace',
            stages=[dict(blocks=1, stride=1, channels=[2, 4],
                         expansions=[1, 2], kernels=[3, 5])],
            stem_channels=[2, 4], stem_stride=1, last_channels=0,
            divisor=1),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=2, in_channels=4))
    model = _build(architecture, input_size=4, cost_network='expected')
    assert model.channel_options == {
        'backbone.stem.conv': [2, 4],
        'backbone.layers.0.expand.conv': [4, 8],
        'backbone.layers.0.project.conv': [2, 4]}
    stem = 0.25 * 2 + 0.75 * 4            # expected widths: 3.5
    hidden = 0.5 * 4 + 0.5 * 8            # 6
    out = 0.2 * 2 + 0.8 * 4               # 3.6
    k3, k5 = 0.3, 0.7
    widths = {'backbone.stem.conv': torch.tensor(stem),
              'backbone.layers.0.expand.conv': torch.tensor(hidden),
              'backbone.layers.0.project.conv': torch.tensor(out)}
    blocks = {'backbone.layers.0': torch.tensor([k3, k5])}
    positions = 4 * 4
    flops = (3 * 9 * stem * positions          # stem conv
             + stem * hidden * positions       # expansion
             + (k3 * 9 + k5 * 25) * hidden * positions  # depthwise
             + hidden * out * positions        # projection
             + out * 2)                        # linear head
    params = (3 * 9 * stem + 2 * stem          # conv + BN
              + stem * hidden + 2 * hidden
              + k3 * (9 * hidden + 2 * hidden) + k5 * (25 * hidden
                                                       + 2 * hidden)
              + hidden * out + 2 * out
              + out * 2 + 2)                   # linear + bias
    cost = model.mutator.estimator.soft_estimate(
        widths, None, model.block_weights(blocks))
    assert float(cost['flops']) == pytest.approx(flops, rel=1e-6)
    assert float(cost['params']) == pytest.approx(params, rel=1e-6)
    model.cost_metric = 'params'
    assert float(model.cost(widths, None, blocks)) == pytest.approx(
        params, rel=1e-6)


def test_gradients_reach_every_alpha_and_the_cost_moves_kernels():
    """One architecture step: every alpha (widths, kernels, resolution)
    gets a gradient; the cost alone prefers the 3x3 kernels."""
    model = _build(resolutions=[12, SIZE], cost_network='expected').train()
    cost = model.sample_architecture()
    logits = model.architecture(torch.randn(4, 3, SIZE, SIZE),
                                mode='tensor')
    (logits.square().mean() + cost / 1e6).backward()
    model.clear_architecture()
    for name, alpha in zip([*model.searched, 'resolution'],
                           model.arch_params):
        assert alpha.grad is not None and alpha.grad.abs().sum() > 0, name
    model.zero_grad()
    cost = model.sample_architecture()
    model.clear_architecture()
    cost.backward()
    for name in model.block_layers:
        alpha = model.arch_params[model.searched.index(name)]
        assert alpha.grad[0] < alpha.grad[1], name  # k5 costs more


def test_latency_cost_is_the_tables_sum_over_the_static_network(
        tmp_path):
    """With a latency table of the space (made-up entries), the cost of
    one candidate per decision is the table's sum over the exported
    static network's conv and linear ops, and linear in kernel weights."""
    probe = _build()
    rng = random.Random(2)
    entries = {op.signature: rng.uniform(0.01, 1.0)
               for op in probe.mutator.latency_ops()}
    path = tmp_path / 'lut.json'
    LatencyTable(entries, dict(device='cpu')).save(path)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        model = DMaskingNAS(
            _architecture(), dict(type='ChannelMutator',
                                  input_shape=(3, SIZE, SIZE),
                                  width_ratios=[0.5, 1.0],
                                  latency_table=str(path)),
            cost_metric='latency')
    table = LatencyTable.load(path)
    for _ in range(3):
        widths, blocks, _ = _draw(model, rng)
        soft = {g: torch.tensor(float(w)) for g, w in widths.items()}
        static = export_subnet(model, ChannelConfig(widths, blocks=blocks))
        expected = table.latency(
            op.signature for op in network_ops(static, (3, SIZE, SIZE)))
        assert float(model.cost(soft, None, blocks)) == pytest.approx(
            expected, rel=1e-9)
        name = next(iter(model.block_layers))
        one = {**blocks, name: 'k3'}
        other = {**blocks, name: 'k5'}
        mixed = {**blocks, name: torch.tensor([0.25, 0.75])}
        assert float(model.cost(soft, None, mixed)) == pytest.approx(
            0.25 * float(model.cost(soft, None, one))
            + 0.75 * float(model.cost(soft, None, other)), rel=1e-9)


def test_derived_network_exports_and_loads(model, tmp_path, run_tool,
                                           write_config):
    """derived.yaml (widths, kernels, resolution) and the search's
    checkpoint go through tools/export_subnet.py: a static checkpoint (the
    network the supernet runs for that choice) and an ONNX file the tool
    checks against PyTorch; the checkpoint loads back alone."""
    alphas = dict(zip(model.searched, model.arch_params))
    with torch.no_grad():
        for i, name in enumerate(model.searched):
            alphas[name].copy_(torch.randn(len(alphas[name]),
                                           generator=torch.Generator()
                                           .manual_seed(i)))
        model.arch_params[-1].copy_(torch.tensor([2.0, 0.0]))  # 12x12
    try:
        derived = model.derived_channel_cfg('m.py')
        blocks = model.derived_blocks()
        inputs = torch.randn(2, 3, SIZE, SIZE)
        model.eval_subnets()['derived']()
        with torch.no_grad():
            expected = model(inputs, mode='tensor')
    finally:
        model.clear_architecture()
        model.mutator.set_choices(model.mutator.max_widths)
        with torch.no_grad():
            for alpha in model.arch_params:
                alpha.zero_()
    assert derived.resolution == 12
    assert derived.blocks == blocks and len(blocks) == 3
    usage = model.usage(derived.channels, 12, derived.blocks)
    assert derived.meta['flops'] == usage['flops']
    yaml_path = tmp_path / 'derived.yaml'
    save_channel_cfg(derived, yaml_path)
    config = write_config(dict(
        type='DMaskingNAS', architecture=_architecture(),
        mutator=dict(type='ChannelMutator', input_shape=(3, SIZE, SIZE),
                     width_ratios=[0.5, 1.0]),
        resolutions=[12, SIZE]))
    checkpoint = tmp_path / 'search.pth'
    torch.save(dict(state_dict=model.state_dict(), meta={}), checkpoint)
    out = tmp_path / 'static.pth'
    result = run_tool('tools/export_subnet.py', config, '--checkpoint',
                      checkpoint, '--channel-cfg', yaml_path, '-o', out,
                      '--onnx', tmp_path / 'static.onnx')
    assert 'onnxruntime vs torch' in result.stdout
    assert f'FLOPs {usage["flops"] / 1e6:.3f}M' in result.stdout
    static = load_static_model(str(config), str(out))
    assert torch.load(out)['meta']['input_shape'] == [3, 12, 12]
    assert sum(p.numel() for p in static.parameters()) == usage['params']
    with torch.no_grad():
        torch.testing.assert_close(
            static(subsample(inputs, (12, 12)), mode='tensor'), expected,
            atol=1e-5, rtol=1e-5)
    # the network to retrain: the space with blocks=derived.yaml at the
    # derived widths has the exported network's layout (its checkpoint
    # loads strictly)
    retrain = write_config(dict(
        type='SlimmableNetwork',
        architecture=_architecture(blocks=str(yaml_path)),
        mutator=dict(type='ChannelMutator', input_shape=(3, SIZE, SIZE)),
        channel_cfgs=[str(yaml_path)]), 'retrain.py')
    rebuilt = load_static_model(str(retrain), str(out))
    assert [list(b.depthwise.candidates) for b in rebuilt.backbone.layers
            ] == [[k] for k in blocks.values()]


def test_static_space_from_blocks_and_bad_blocks():
    """``blocks=`` builds the static space (one kernel per layer, the
    supernet's parameter names); unknown or missing layers and kernels
    are refused with the names that would be valid."""
    blocks = {'layers.0': 'k5', 'backbone.layers.1': 'k3',
              'layers.2': 'k5'}
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        static = MODELS.build(_architecture(blocks=blocks))
        supernet = MODELS.build(_architecture())
    assert [list(b.depthwise.candidates) for b in static.backbone.layers] \
        == [['k5'], ['k3'], ['k5']]
    assert set(static.state_dict()) < set(supernet.state_dict())
    space = supernet.backbone
    for bad, needle in [({**blocks, 'layers.7': 'k3'}, 'unknown layer'),
                        ({**blocks, 'layers.0': 'k7'}, 'no kernel '
                         'candidate'),
                        ({'layers.0': 'k3'}, 'no kernel for layers.1')]:
        with pytest.raises(ChannelConfigError, match=needle):
            space.keep_blocks(bad)
    with pytest.raises(ConfigError, match='kernels must be odd'):
        FBNetV2SearchSpace(stages=[dict(blocks=1, stride=1, channels=[8],
                                        expansions=[1], kernels=[4])])
    with pytest.raises(ConfigError, match='keys'):
        FBNetV2SearchSpace(stages=[dict(blocks=1, stride=1)])


def test_joint_retraining_of_blocks_is_refused():
    """Several channel_cfgs with kernels cannot share one network."""
    cfg = Config.fromfile(str(SUBNET))
    widths = build_supernet(cfg).mutator.max_widths
    blocks = {f'backbone.layers.{i}': 'k3' for i in range(7)}
    cfg.model.channel_cfgs = [dict(channels=widths, blocks=blocks)] * 2
    with pytest.raises(ConfigError, match='train one at a time'):
        build_supernet(cfg, keep_algorithm=True)


def test_search_runs_end_to_end_and_its_result_exports(
        tmp_path, make_fashion_mnist, run_tool, differentiable_search_options):
    """The Fashion-MNIST config through tools/search.py on tiny data (one
    warm-up epoch, one with architecture steps, the resolution searched
    too): derived.yaml names valid widths, every kernel and a resolution;
    its FLOPs are the estimate of those choices; it exports."""
    root = make_fashion_mnist(tmp_path / 'data', 96, 16)
    work_dir = tmp_path / 'search'
    run_tool('tools/search.py', SEARCH, '--work-dir', work_dir,
             '--cfg-options', *differentiable_search_options(root, 2),
             f'val_dataloader.dataset.dataset.data_root={root}',
             'val_dataloader.dataset.start=0',
             'val_dataloader.dataset.stop=16',
             'train_cfg.warmup_epochs=1', 'val_cfg.calibrate_bn_batches=1',
             'model.resolutions=[24,32]')
    derived = load_channel_cfg(work_dir / 'derived.yaml')
    cfg = Config.fromfile(str(SEARCH))
    cfg.model.resolutions = [24, 32]
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        algorithm = MODELS.build(cfg.model)
    validate_channels(derived, algorithm.mutator.max_widths)
    for group, width in derived.channels.items():
        assert width in algorithm.channel_options[group]
    assert set(derived.blocks) == {
        f'backbone.layers.{i}' for i in range(7)}
    assert derived.resolution in (24, 32)
    assert derived.meta['flops'] == algorithm.usage(
        derived.channels, derived.resolution, derived.blocks)['flops']
    assert (work_dir / 'block_distributions.png').stat().st_size > 0
    (checkpoint, ) = work_dir.glob('epoch_2.pth')
    out = tmp_path / 'fbnetv2.pth'
    run_tool('tools/export_subnet.py', SEARCH, '--checkpoint', checkpoint,
             '--channel-cfg', work_dir / 'derived.yaml', '-o', out,
             '--onnx', tmp_path / 'fbnetv2.onnx')
    static = load_static_model(str(SEARCH), str(out))
    assert sum(p.numel() for p in static.parameters()) == \
        derived.meta['params']
    counted = run_tool('tools/get_flops.py', SEARCH, '--channel-cfg',
                       work_dir / 'derived.yaml')
    assert f'FLOPs {derived.meta["flops"] / 1e6:.2f}M' in counted.stdout
    # the retraining config builds that network (kernels, widths,
    # resolution): the exported weights load into it strictly
    retrain = Config.fromfile(str(SUBNET))
    retrain.model.channel_cfgs = str(work_dir / 'derived.yaml')
    subnet = build_supernet(retrain, keep_algorithm=True)
    load_state_strictly(subnet.architecture, torch.load(out)['state_dict'],
                        str(out))
    assert subnet.resolution == derived.resolution


def test_imagenet_config_builds():
    """FBNetV2's ImageNet setting: the space, the resolutions, a budget
    between its cheapest and widest networks, FBNet's data split."""
    cfg = Config.fromfile(str(IN1K))
    cfg.model.resolutions = None  # tracing 3 resolutions at 224 is slow
    supernet = build_supernet(cfg)
    assert isinstance(supernet.architecture.backbone, FBNetV2SearchSpace)
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        model = MODELS.build(cfg.model)
    assert len(model.block_layers) == 18
    # 0.75 .. 4.5 x the widest input, 16, in multiples of 8
    assert model.options['backbone.layers.1.expand.conv'] == [
        16, 24, 40, 48, 64, 72]
    cheapest = model.usage(
        {g: c[0] for g, c in model.channel_options.items()}, None,
        dict.fromkeys(model.block_layers, 'k3'))['flops']
    assert cheapest < 300e6 == model.target < model.widest_cost
    assert Config.fromfile(str(IN1K)).model.resolutions == [160, 192, 224]
    weights = cfg.train_dataloader.dataset
    arch = cfg.train_cfg.arch_dataloader.dataset
    assert weights.stop == arch.start and arch.stop is None


def test_imagenet_config_space_is_the_backbones_default():
    """configs/_base_/models/fbnetv2_imagenet.py writes out the space that
    FBNetV2SearchSpace() builds by default: the two cannot drift apart."""
    backbone = dict(Config.fromfile(str(IN1K)).model.architecture.backbone)
    assert backbone.pop('type') == 'FBNetV2SearchSpace'
    from_config = FBNetV2SearchSpace(**backbone)
    default = FBNetV2SearchSpace()
    assert from_config.channel_candidates() == default.channel_candidates()
    assert from_config.kernel_options() == default.kernel_options()
    assert [b.residual for b in from_config.layers] == [
        b.residual for b in default.layers]


def test_imagenet_retrain_config_builds_the_derived_network(tmp_path,
                                                           count_flops):
    """dmasking_fbnetv2_subnet_8xb32_in1k.py with a derived.yaml of the
    ImageNet space (random widths and kernels, resolution 192) builds the
    static network: fvcore's count and the parameters equal the search's
    cost of that choice, and it runs at the derived resolution."""
    search = Config.fromfile(str(IN1K))
    search.model.resolutions = None
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        model = MODELS.build(search.model)
    widths, blocks, _ = _draw(model, random.Random(3))
    usage = model.usage(widths, None, blocks)
    path = tmp_path / 'derived.yaml'
    save_channel_cfg(_config(widths, blocks, 192), path)
    cfg = Config.fromfile(str(IN1K_SUBNET))
    cfg.model.channel_cfgs = str(path)
    subnet = build_supernet(cfg, keep_algorithm=True)
    assert subnet.resolution == 192
    static = subnet.architecture.eval()
    inputs = torch.randn(1, 3, 224, 224)
    assert count_flops(static, inputs) == usage['flops']
    assert sum(p.numel() for p in static.parameters()) == usage['params']
    assert [list(b.depthwise.candidates) for b in static.backbone.layers
            ] == [[blocks[f'backbone.layers.{i}']]
                  for i in range(len(static.backbone.layers))]
    with torch.no_grad():
        assert subnet(torch.randn(2, 3, 224, 224), mode='tensor').shape \
            == (2, 1000)
