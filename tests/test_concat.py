"""Concatenated channels (DenseNet, multi-branch fusions).

A layer reading ``torch.cat`` of several groups keeps each part's group:
the parts are sliced at their own offsets. Checked against an independent
reference, the exported static model: outputs, gradients and batch-norm
statistics in both memory formats, FLOPs against fvcore and params
against torch; and the places that cannot handle such a layer yet refuse
it instead of treating its input as fixed.
"""
from __future__ import annotations

import copy
import logging
import random

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_export_matches_supernet
from torch import nn

from mmchansearch.analysis import analyze_channels
from mmchansearch.channel_latency import channel_op_grids
from mmchansearch.channel_masks import group_readers
from mmchansearch.coverage import randomize_batch_norms
from mmchansearch.errors import ConfigError
from mmchansearch.models.algorithms import SlimmableNetwork
from mmchansearch.mutator import ChannelMutator
from mmchansearch.widening import resize_layers

SHAPE = (3, 8, 8)


class DenseNetLike(nn.Module):
    """Two dense layers, a depthwise conv and a transition over the
    growing concatenation, a linear head.

    Groups: ``stem``, ``layer1`` (its conv), ``layer2``, ``trans``; the
    norm, conv and depthwise conv after a concatenation read its parts.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.layer1_bn = nn.BatchNorm2d(8)
        self.layer1 = nn.Conv2d(8, 6, 3, padding=1, bias=False)
        self.layer2_bn = nn.BatchNorm2d(14)
        self.layer2 = nn.Conv2d(14, 5, 1)
        self.dw = nn.Conv2d(19, 19, 3, padding=1, groups=19)
        self.dw_bn = nn.BatchNorm2d(19)
        self.trans = nn.Conv2d(19, 12, 1)
        self.fc = nn.Linear(12 + 19, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        features = torch.cat([x, self.layer1(F.relu(self.layer1_bn(x)))], 1)
        new = self.layer2(F.relu(self.layer2_bn(features)))
        features = torch.cat([features, new], dim=-3)  # a negative dim
        y = F.relu(self.dw_bn(self.dw(features)))
        pooled = torch.cat([self.trans(y).mean((2, 3)), y.mean((2, 3))], 1)
        return self.fc(pooled)


class GroupedReader(nn.Module):
    """A grouped conv reading a concatenation (ShuffleNetV1's units): it
    reads the first inputs of each conv group, so every part's width must
    stay a multiple of its groups."""

    def __init__(self, part: int = 4) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, part, 1)
        self.b = nn.Conv2d(3, 8 - part, 1)
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.head = nn.Conv2d(8, 6, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.grouped(torch.cat([self.a(x), self.b(x)], 1))
        return self.head(x).mean((2, 3))


class ResidualOnConcat(nn.Module):
    """A conv's output added to a concatenation (ShuffleNetV1's residual
    after a downsampling unit): the conv writes its output in the
    concatenation's parts."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(3, 6, 1)
        self.c = nn.Conv2d(3, 10, 1)
        self.c_bn = nn.BatchNorm2d(10)
        self.head = nn.Linear(10, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.a(x), self.b(x)], 1) + self.c_bn(self.c(x))
        return self.head(x.mean((2, 3)))


class MixedSum(nn.Module):
    """Two concatenations with other parts added: neither can be written
    in the other's parts."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(3, 4, 1)
        self.c = nn.Conv2d(3, 2, 1)
        self.d = nn.Conv2d(3, 6, 1)
        self.head = nn.Conv2d(8, 6, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.a(x), self.b(x)], 1) \
            + torch.cat([self.c(x), self.d(x)], 1)
        return self.head(x).mean((2, 3))


class SlicedPart(nn.Module):
    """A concatenation of a slice of channels behind an unsupported op
    (a flip): the slice cannot be cut out of its producer's output, so
    the parts cannot be sized (tests/test_split.py has the slices that
    can)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(3, 4, 1)
        self.head = nn.Conv2d(6, 6, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.a(x).flip(1)[:, :2], self.b(x)], 1)
        return self.head(x).mean((2, 3))


def _model(seed: int = 0, model_class: type = DenseNetLike) -> nn.Module:
    torch.manual_seed(seed)
    model = model_class()
    randomize_batch_norms(model, seed)
    return model


def test_concatenation_keeps_the_groups_of_its_parts(caplog, test_logger):
    with caplog.at_level(logging.WARNING):
        analysis = analyze_channels(_model(), SHAPE, logger=test_logger)
    assert list(analysis.groups) == ['stem', 'layer1', 'layer2', 'trans']
    assert not analysis.fixed and 'kept fixed' not in caplog.text
    two = (('stem', 8), ('layer1', 6))
    three = two + (('layer2', 5), )
    parts = {name: info.in_parts for name, info in analysis.layers.items()}
    assert parts == {'stem': None, 'layer1_bn': None, 'layer1': None,
                     'layer2_bn': two, 'layer2': two, 'dw': three,
                     'dw_bn': three, 'trans': three,
                     'fc': (('trans', 12), ) + three}
    for name in ('layer2', 'trans', 'fc'):
        assert analysis.layers[name].in_group is None
    assert 'fc' in analysis.groups['layer1'].members


def test_parts_of_grouped_readers_and_residual_writers():
    analysis = analyze_channels(_model(0, GroupedReader), SHAPE)
    assert not analysis.fixed
    assert analysis.layers['grouped'].in_parts == (('a', 4), ('b', 4))
    assert analysis.groups['a'].divisor == analysis.groups['b'].divisor == 2
    analysis = analyze_channels(_model(0, ResidualOnConcat), SHAPE)
    assert not analysis.fixed
    assert analysis.layers['c'].out_parts == (('a', 4), ('b', 6))
    assert analysis.layers['c'].out_group is None
    assert analysis.layers['c_bn'].in_parts == (('a', 4), ('b', 6))
    assert analysis.groups['b'].producers == ['b', 'c']


@pytest.mark.parametrize('model_class',
                         [DenseNetLike, GroupedReader, ResidualOnConcat])
@pytest.mark.parametrize('memory_format',
                         [torch.contiguous_format, torch.channels_last])
def test_supernet_equals_its_export_with_concatenations(
        memory_format, model_class, count_flops):
    model = _model(0, model_class).to(memory_format=memory_format)
    mutator = ChannelMutator(input_shape=SHAPE)
    mutator.prepare(model)
    x = torch.randn(3, *SHAPE).to(memory_format=memory_format)
    rng = random.Random(0)
    for _ in range(4):
        choices = mutator.sample(rng)
        mutator.set_choices(choices)
        static = mutator.export_static().to(memory_format=memory_format)
        assert_export_matches_supernet(mutator, static, x)
        assert mutator.estimate(choices)['flops'] == count_flops(
            static, torch.zeros(1, *SHAPE))
        assert mutator.estimate(choices)['params'] == sum(
            p.numel() for p in static.parameters())


def test_batch_norm_over_parts_updates_the_statistics_it_reads():
    model = _model()
    mutator = ChannelMutator(input_shape=SHAPE)
    mutator.prepare(model)
    mutator.set_choices({'stem': 3, 'layer1': 2, 'layer2': 4, 'trans': 5})
    before = model.layer2_bn.running_mean.clone()
    static = mutator.export_static().train()
    model.train()
    x = torch.randn(4, *SHAPE)
    model(x)
    static(x)
    after = mutator.export_static()
    for name in ('running_mean', 'running_var'):
        torch.testing.assert_close(getattr(after.layer2_bn, name),
                                   getattr(static.layer2_bn, name))
    # stem channels 0-2 and layer1 channels 8-9 moved, the others did not
    moved = (model.layer2_bn.running_mean != before).nonzero().flatten()
    assert moved.tolist() == [0, 1, 2, 8, 9]


@pytest.mark.parametrize('model,op', [
    (GroupedReader(part=3), 'parts that are not multiples of its groups'),
    (MixedSum(), 'element-wise op on concatenations with other parts'),
    (SlicedPart(), 'Cat of channels the walk cannot size')])
def test_a_concatenation_that_cannot_be_sliced_stays_fixed(
        model, op, caplog, test_logger):
    with caplog.at_level(logging.WARNING):
        analysis = analyze_channels(model, SHAPE, logger=test_logger)
    for name in ('a', 'b'):
        assert analysis.layers[name].out_group is None
    assert any(op in reason for reason in analysis.fixed)
    assert op in caplog.text


def test_methods_without_concatenation_support_refuse_it(tmp_path):
    model = _model()
    mutator = ChannelMutator(input_shape=SHAPE)
    mutator.prepare(model)
    analysis = mutator.analysis
    with pytest.raises(ConfigError, match='latency tables.*layer2_bn'):
        channel_op_grids(analysis, model, mutator.candidate_widths,
                         mutator.layer_input_shapes)
    with pytest.raises(ConfigError, match='channel masks.*layer2'):
        group_readers(analysis, 'layer1')
    with pytest.raises(ConfigError, match='resizing layers.*dw'):
        resize_layers(copy.deepcopy(model), analysis, {'layer2': 8})
    with pytest.raises(ConfigError, match='resizing layers'):
        ChannelMutator(input_shape=SHAPE, width_cap=1.5).prepare(_model())
    writer = ChannelMutator(input_shape=SHAPE)  # a layer writing parts
    writer.prepare(_model(0, ResidualOnConcat))
    with pytest.raises(ConfigError, match=r'latency tables.*\bc\b'):
        channel_op_grids(writer.analysis, writer.model,
                         writer.candidate_widths, writer.layer_input_shapes)


def test_switchable_batch_norms_over_parts_give_each_subnet(test_logger):
    cfgs = [{'stem': 4, 'layer1': 3, 'layer2': 2, 'trans': 6},
            {'stem': 8, 'layer1': 1, 'layer2': 5, 'trans': 3}]
    reference = ChannelMutator(input_shape=SHAPE)
    reference.prepare(_model())
    slimmable = SlimmableNetwork(
        _model(), [{'channels': c} for c in cfgs],
        mutator=dict(type='ChannelMutator', input_shape=SHAPE),
        memory_format='contiguous').eval()
    x = torch.randn(2, *SHAPE)
    for index, cfg in enumerate(cfgs):
        reference.set_choices(cfg)
        static = reference.export_static().eval()
        slimmable.activate(index)
        with torch.no_grad():
            torch.testing.assert_close(
                slimmable.architecture(x), static(x), atol=1e-5,
                rtol=1e-5)
        assert slimmable.architecture.layer2_bn.bns[index].num_features \
            == cfg['stem'] + cfg['layer1']


class ShapeDependent(nn.Module):
    """A forward that changes with the width it sees: at full width (the
    trace) the channels pass, narrower they are cut, which no trace at
    full width can show."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 1)
        self.b = nn.Conv2d(8, 6, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.a(x)
        if x.shape[1] < 8:
            x = x[:, :2]
        return self.b(x).mean((2, 3))


def test_a_layer_fed_other_widths_than_the_analysis_expects_fails():
    model = _model(0, ShapeDependent)
    mutator = ChannelMutator(input_shape=SHAPE)
    mutator.prepare(model)
    assert model(torch.randn(1, *SHAPE)).shape == (1, 6)
    mutator.set_choices({'a': 4})
    with pytest.raises(RuntimeError, match='got 2 input channels where the '
                       'channel analysis expects 4'):
        model(torch.randn(1, *SHAPE))
