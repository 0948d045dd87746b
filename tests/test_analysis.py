"""Channel-dependency analysis: groups, followers, unsupported ops."""
from __future__ import annotations

import logging
import os.path as osp
from importlib.util import find_spec
from pathlib import Path

import mmpretrain
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmpretrain.models.utils import channel_shuffle
from torch import nn

from mmchansearch.analysis import analyze_channels
from mmchansearch.coverage import randomize_batch_norms
from mmchansearch.errors import ChannelConfigError
from mmchansearch.mutator import ChannelMutator
from mmchansearch.registry import MODELS

INPUT_SHAPE = (3, 32, 32)
TINY_INPUT_SHAPE = (3, 16, 16)
# Group counts derived from the architectures: ResNet has one group per
# stage (joined by the residual sums; the basic-block stem joins stage 1,
# whose first block has no downsample) plus one per inner conv; MobileNetV2
# has stem + 7 stage outputs + 16 expansions + the last conv; MobileNetV3
# small has stem + 10 expansions + 9 SE squeezes + 5 stage outputs + last
# conv + head hidden layer, large 1 + 14 + 8 + 5 + 1 + 1.
EXPECTED_GROUP_COUNTS = {
    'resnet18': 4 + 4 * 2,
    'resnet50': 1 + 4 + 16 * 2,
    'resnet18_cifar': 4 + 4 * 2,
    'mobilenet_v2': 1 + 7 + 16 + 1,
    'mobilenet_v3_small': 1 + 10 + 9 + 5 + 1 + 1,
    'mobilenet_v3_large': 1 + 14 + 8 + 5 + 1 + 1,
}


class GroupedConvNet(nn.Module):

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.gconv = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.bn2 = nn.BatchNorm2d(8)
        self.conv3 = nn.Conv2d(8, 16, 1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.gconv(x)))
        x = F.relu(self.conv3(x))
        return self.fc(x.mean((2, 3)))


class ShuffleNet(nn.Module):
    """A ShuffleNet unit: channels shuffled in 3 groups between a conv and
    a grouped conv (mmpretrain's ``channel_shuffle``)."""

    def __init__(self) -> None:
        super().__init__()
        self.compress = nn.Conv2d(3, 12, 1)
        self.bn = nn.BatchNorm2d(12)
        self.expand = nn.Conv2d(12, 9, 3, padding=1, groups=3)
        self.fc = nn.Linear(9, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = channel_shuffle(F.relu(self.bn(self.compress(x))), 3)
        return self.fc(F.relu(self.expand(x)).mean((2, 3)))


class LayerScaleNet(nn.Module):
    """Multiplies a conv's output by a per-channel parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.gamma = nn.Parameter(torch.ones(1, 8, 1, 1))
        self.conv2 = nn.Conv2d(8, 6, 3, padding=1)
        self.fc = nn.Linear(6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x)) * self.gamma
        x = F.relu(self.conv2(x))
        return self.fc(x.mean((2, 3)))


class ChannelSplitNet(nn.Module):
    """Splits 8 pooled channels into 2 rows of 4 features for ``fc``."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x)).mean((2, 3))     # (N, 8)
        x = x.view(x.shape[0], 2, 4)              # mixes the channel dim
        return self.fc(x).sum(1)


# ----------------------------------------------------------- tiny model
def test_tiny_net_groups(tiny_net):
    analysis = analyze_channels(tiny_net, TINY_INPUT_SHAPE)
    widths = {name: g.max_width for name, g in analysis.groups.items()}
    assert widths == {'stem': 16, 'res_conv1': 12, 'expand': 32,
                      'se_reduce': 8, 'project': 24, 'fc1': 20}
    assert analysis.groups['stem'].producers == ['stem', 'res_conv2']
    assert analysis.groups['expand'].producers == ['expand', 'se_expand']
    assert analysis.fixed == []
    assert analysis.input_shape == TINY_INPUT_SHAPE


def test_tiny_net_layers(tiny_net):
    layers = analyze_channels(tiny_net, TINY_INPUT_SHAPE).layers
    assert layers['stem'].in_group is None  # the model input
    assert layers['dw'].kind == 'dwconv'
    assert (layers['dw'].in_group, layers['dw'].out_group) == \
        ('expand', 'expand')
    assert (layers['fc_bn'].kind, layers['fc_bn'].in_group) == ('bn', 'fc1')
    assert (layers['fc2'].in_group, layers['fc2'].out_group) == ('fc1', None)
    # 16x16 input, stride-2 stem: 8x8 positions; pooled linear: 1 row.
    assert layers['stem'].output_positions == 64
    assert layers['se_reduce'].output_positions == 1
    assert layers['fc1'].output_positions == 1


def test_analysis_leaves_model_unchanged(tiny_net):
    tiny_net.train()
    before = {k: v.clone() for k, v in tiny_net.state_dict().items()}
    analyze_channels(tiny_net, TINY_INPUT_SHAPE)
    assert tiny_net.training
    assert all(not m._forward_hooks for m in tiny_net.modules())
    after = tiny_net.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert torch.equal(value, after[key]), key
    assert type(tiny_net.stem) is nn.Conv2d


# ------------------------------------------------------ mmpretrain models
def test_classifier_groups_are_named_and_stable(classifier_name,
                                                make_classifier):
    name = classifier_name
    first = analyze_channels(make_classifier(name), INPUT_SHAPE)
    second = analyze_channels(make_classifier(name, seed=1), INPUT_SHAPE)
    assert len(first.groups) == EXPECTED_GROUP_COUNTS[name]
    assert first.fixed == []
    order = list(first.layers)
    for group_name, group in first.groups.items():
        assert group_name == group.producers[0]
        assert group.producers == sorted(group.producers, key=order.index)
    assert list(first.groups) == list(second.groups)
    for group_name, group in first.groups.items():
        assert group.members == second.groups[group_name].members


def test_layer_channels_equal_group_width(classifier_name, make_classifier):
    analysis = analyze_channels(make_classifier(classifier_name),
                                INPUT_SHAPE)
    for layer in analysis.layers.values():
        if layer.in_group is not None:
            assert layer.in_channels == \
                analysis.groups[layer.in_group].max_width, layer.name
        if layer.out_group is not None:
            assert layer.out_channels == \
                analysis.groups[layer.out_group].max_width, layer.name


def test_residual_adds_merge_producers(make_classifier):
    layers = analyze_channels(make_classifier('resnet18'), INPUT_SHAPE).layers
    stage1 = ['backbone.conv1', 'backbone.layer1.0.conv2',
              'backbone.layer1.1.conv2']
    assert {layers[n].out_group for n in stage1} == {'backbone.conv1'}
    stage2 = ['backbone.layer2.0.conv2', 'backbone.layer2.0.downsample.0',
              'backbone.layer2.1.conv2']
    assert {layers[n].out_group for n in stage2} == \
        {'backbone.layer2.0.conv2'}
    assert layers['backbone.layer2.0.conv1'].out_group == \
        'backbone.layer2.0.conv1'


def test_bottleneck_downsample_joins_its_stage(make_classifier):
    analysis = analyze_channels(make_classifier('resnet50'), INPUT_SHAPE)
    group = analysis.groups['backbone.layer1.0.conv3']
    assert group.producers == ['backbone.layer1.0.conv3',
                               'backbone.layer1.0.downsample.0',
                               'backbone.layer1.1.conv3',
                               'backbone.layer1.2.conv3']
    assert group.max_width == 256


def test_depthwise_conv_follows_its_input(make_classifier):
    analysis = analyze_channels(make_classifier('mobilenet_v2'), INPUT_SHAPE)
    dw = analysis.layers['backbone.layer2.0.conv.1.conv']
    assert dw.kind == 'dwconv'
    assert dw.in_group == dw.out_group == 'backbone.layer2.0.conv.0.conv'
    assert all(dw.name not in g.producers for g in analysis.groups.values())


@pytest.mark.parametrize('name, block, block_group', [
    ('mobilenet_v3_large', 'backbone.layer4',
     'backbone.layer4.expand_conv.conv'),
    ('mobilenet_v3_small', 'backbone.layer1', 'backbone.layer0.conv'),
])
def test_se_expand_conv_joins_block_channels(name, block, block_group,
                                             make_classifier):
    layers = analyze_channels(make_classifier(name), INPUT_SHAPE).layers
    assert layers[f'{block}.depthwise_conv.conv'].out_group == block_group
    assert layers[f'{block}.se.conv1.conv'].in_group == block_group
    assert layers[f'{block}.se.conv2.conv'].out_group == block_group
    assert layers[f'{block}.se.conv1.conv'].out_group == \
        f'{block}.se.conv1.conv'


# --------------------------------------------------------- robustness
def test_grouped_conv_groups_get_its_group_count_as_divisor(caplog,
                                                            test_logger):
    model = GroupedConvNet()
    with caplog.at_level(logging.WARNING):
        analysis = analyze_channels(model, (3, 16, 16), logger=test_logger)
    assert list(analysis.groups) == ['conv1', 'gconv', 'conv3']
    assert analysis.groups['conv1'].divisor == 2
    assert analysis.groups['gconv'].divisor == 2
    assert analysis.groups['conv3'].divisor == 1
    gconv = analysis.layers['gconv']
    assert (gconv.kind, gconv.in_group, gconv.out_group) == \
        ('conv', 'conv1', 'gconv')
    assert not analysis.fixed
    assert 'kept fixed' not in caplog.text


def test_channel_shuffle_keeps_the_group_in_multiples_of_its_groups(
        count_flops, caplog, test_logger):
    torch.manual_seed(0)
    model = ShuffleNet()
    randomize_batch_norms(model, 0)
    model.eval()
    with caplog.at_level(logging.WARNING):
        analysis = analyze_channels(model, (3, 8, 8), logger=test_logger)
    assert not analysis.fixed and 'kept fixed' not in caplog.text
    assert analysis.layers['expand'].in_group == 'compress'
    assert analysis.groups['compress'].divisor == 3
    mutator = ChannelMutator(input_shape=(3, 8, 8))
    mutator.prepare(model)
    assert mutator.candidates('compress') == [3, 6, 9, 12]
    x = torch.randn(2, 3, 8, 8)
    for widths in ({'compress': 6, 'expand': 3}, {'compress': 9, 'expand': 9}):
        mutator.set_choices(widths)
        static = mutator.export_static().eval()
        with torch.no_grad():
            torch.testing.assert_close(model(x), static(x), atol=1e-6,
                                       rtol=0)
        assert mutator.estimate()['flops'] == count_flops(
            static, torch.zeros(1, 3, 8, 8))
    with pytest.raises(ChannelConfigError, match='multiple of 3'):
        mutator.set_choices({'compress': 4, 'expand': 3})


def test_grouped_conv_slices_per_multiple_and_exports_exactly(count_flops):
    torch.manual_seed(0)
    model = GroupedConvNet().eval()
    x = torch.randn(2, 3, 16, 16)
    mutator = ChannelMutator(input_shape=(3, 16, 16))
    mutator.prepare(model)
    assert mutator.candidates('gconv') == [2, 4, 6, 8]
    for widths in ({'conv1': 6, 'gconv': 4, 'conv3': 5},
                   {'conv1': 2, 'gconv': 8, 'conv3': 16}):
        mutator.set_choices(widths)
        static = mutator.export_static().eval()
        with torch.no_grad():
            torch.testing.assert_close(model(x), static(x), atol=1e-6,
                                       rtol=0)
        assert static.gconv.groups == 2
        assert static.gconv.weight.shape == (
            widths['gconv'], widths['conv1'] // 2, 3, 3)
        assert mutator.estimate()['flops'] == count_flops(
            static, torch.zeros(1, 3, 16, 16))
        assert mutator.estimate()['params'] == sum(
            p.numel() for p in static.parameters())
    with pytest.raises(ChannelConfigError, match='multiple of 2'):
        mutator.set_choices({'conv1': 5, 'gconv': 4, 'conv3': 5})


def test_per_channel_parameter_is_fixed_with_warning(caplog, test_logger):
    with caplog.at_level(logging.WARNING):
        analysis = analyze_channels(LayerScaleNet(), (3, 16, 16),
                                    logger=test_logger)
    assert list(analysis.groups) == ['conv2']
    assert analysis.layers['conv1'].out_group is None
    assert 'per-channel parameter' in caplog.text


def test_reshape_that_splits_channels_is_fixed(caplog, test_logger):
    """``view(N, 2, 4)`` of 8 pooled channels feeds ``fc`` 4 features.

    ``fc`` reads 4 features, so it cannot be a consumer of the 8-wide stem
    group; the stem's channels must be fixed (reshapes that mix channels are
    documented as unsupported).
    """
    with caplog.at_level(logging.WARNING):
        analysis = analyze_channels(ChannelSplitNet(), (3, 16, 16),
                                    logger=test_logger)
    fc = analysis.layers['fc']
    assert fc.in_group is None, (
        f'fc (4 input features) was put in group {fc.in_group!r} of width '
        f'{analysis.groups[fc.in_group].max_width}')
    assert 'View' in caplog.text


# Layers with a forward of their own that the dynamic ops reproduce.
# EfficientNet-B0 (mmpretrain's Conv2dAdaptivePadding, timm's
# BatchNormAct2d): stem + 15 expansions (the first block has none) + 16 SE
# squeezes + 7 stage outputs + the last conv. regnetx_002 (BatchNormAct2d):
# stem + 4 stage outputs + 13 blocks x (1x1 conv, grouped 3x3 conv).
OWN_FORWARD_GROUP_COUNTS = {
    'efficientnet/efficientnet-b0_8xb32_in1k.py': 1 + 15 + 16 + 7 + 1,
    'timm-efficientnet-b0_in1k.py': 1 + 15 + 16 + 7 + 1,
    'timm-regnetx-002_in1k.py': 1 + 4 + 13 * 2,
}


@pytest.mark.parametrize('config', list(OWN_FORWARD_GROUP_COUNTS))
def test_adaptive_padding_and_norm_act_layers_are_grouped(config):
    """Depthwise Conv2dAdaptivePadding convs follow their input past their
    own padding; a BatchNormAct2d's normalization, behind its activation,
    is recognised: nothing is fixed but the classifier's outputs."""
    if config.startswith('timm'):
        if find_spec('timm') is None:
            pytest.skip('timm is not installed')
        path = Path(__file__).resolve().parents[1] / 'configs' / \
            'model_zoo' / config
    else:
        path = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'configs',
                        config)
    model = MODELS.build(Config.fromfile(str(path)).model)
    analysis = analyze_channels(model, INPUT_SHAPE)
    assert len(analysis.groups) == OWN_FORWARD_GROUP_COUNTS[config]
    assert analysis.fixed == [] and analysis.fixed_layers == {}
    fixed = [n for n, layer in analysis.layers.items()
             if layer.kind != 'bn' and layer.out_group is None]
    assert fixed == ['head.fc']
