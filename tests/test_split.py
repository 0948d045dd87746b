"""Channel splits (CSPNet's halves, ShuffleNetV2's branches, Res2Net's
scales).

A slice, ``split`` or ``chunk`` of channels cuts its producer's output in
parts. One trace cannot tell sizes that follow the width from constant
ones, so the analysis takes each split as even, else constant, else fixed,
whichever a forward at reduced widths confirms. Checked against an
independent reference: the exported static model (outputs and gradients),
fvcore's FLOPs and torch's params, at random subnets.
"""
from __future__ import annotations

import copy
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
from mmchansearch.mutator import ChannelMutator
from mmchansearch.widening import resize_layers

SHAPE = (3, 8, 8)


class CSPLike(nn.Module):
    """A CSP stage: the expand conv's output split in halves by its
    runtime width (``x.shape[1] // 2``, or ``chunk``), a residual block on
    the second half, both halves concatenated again."""

    def __init__(self, chunk: bool = False) -> None:
        super().__init__()
        self.chunk = chunk
        self.expand = nn.Conv2d(3, 12, 1, bias=False)
        self.expand_bn = nn.BatchNorm2d(12)
        self.block1 = nn.Conv2d(6, 4, 1)
        self.block1_bn = nn.BatchNorm2d(4)
        self.block2 = nn.Conv2d(4, 6, 3, padding=1)
        self.after = nn.Conv2d(6, 6, 1)
        self.final = nn.Conv2d(12, 8, 1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.expand_bn(self.expand(x)))
        if self.chunk:
            xa, xb = x.chunk(2, dim=1)
        else:
            split = x.shape[1] // 2
            xa, xb = x[:, :split], x[:, split:]
        xb = xb + self.block2(F.relu(self.block1_bn(self.block1(xb))))
        x = self.final(torch.cat((xa, self.after(xb)), 1))
        return self.fc(x.mean((2, 3)))


class ConstantHalves(CSPLike):
    """The same stage with the halves at a constant offset (``x[:, :6]``):
    the first half must keep its width."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.expand_bn(self.expand(x)))
        xa, xb = x[:, :6], x[:, 6:]
        xb = xb + self.block2(F.relu(self.block1_bn(self.block1(xb))))
        x = self.final(torch.cat((xa, self.after(xb)), 1))
        return self.fc(x.mean((2, 3)))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    batch, channels, height, width = x.shape
    x = x.view(batch, groups, channels // groups, height, width)
    return x.transpose(1, 2).contiguous().view(batch, -1, height, width)


class ShuffleV2Like(nn.Module):
    """A ShuffleNetV2 unit: half the channels through a branch, the other
    half passed on, concatenated and shuffled."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.branch1 = nn.Conv2d(4, 6, 1)
        self.branch1_bn = nn.BatchNorm2d(6)
        self.branch_dw = nn.Conv2d(6, 6, 3, padding=1, groups=6)
        self.branch2 = nn.Conv2d(6, 4, 1)
        self.head = nn.Conv2d(8, 6, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        c = x.shape[1] // 2 + x.shape[1] % 2
        x1, x2 = x[:, :c], x[:, c:]
        branch = F.relu(self.branch1_bn(self.branch1(x2)))
        out = torch.cat((x1, self.branch2(self.branch_dw(branch))), 1)
        return self.head(channel_shuffle(out, 2)).mean((2, 3))


class Res2NetLike(nn.Module):
    """A Res2Net bottleneck: ``torch.split`` into scales of a constant
    width, each scale's conv added to the next scale, the last scale
    passed on, all concatenated."""

    def __init__(self) -> None:
        super().__init__()
        self.width = 3
        self.conv1 = nn.Conv2d(3, 12, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(12)
        self.convs = nn.ModuleList(
            nn.Conv2d(3, 3, 3, padding=1, bias=False) for _ in range(3))
        self.bns = nn.ModuleList(nn.BatchNorm2d(3) for _ in range(3))
        self.conv3 = nn.Conv2d(12, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        spx = torch.split(F.relu(self.bn1(self.conv1(x))), self.width, 1)
        sp = out = F.relu(self.bns[0](self.convs[0](spx[0])))
        for i in (1, 2):
            sp = F.relu(self.bns[i](self.convs[i](sp + spx[i])))
            out = torch.cat((out, sp), 1)
        out = torch.cat((out, spx[3]), 1)
        return (self.conv3(out) + identity).mean((2, 3))


class KeepsLastChannels(nn.Module):
    """A split neither even nor constant: the last 2 channels at any
    width (``x.shape[1] - 2``)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 1)
        self.b = nn.Conv2d(6, 4, 1)
        self.c = nn.Conv2d(2, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.a(x)
        cut = x.shape[1] - 2
        return (self.b(x[:, :cut]) + self.c(x[:, cut:])).mean((2, 3))


class Halves(nn.Module):
    """Halves split by the runtime width, or at a constant offset."""

    def __init__(self, constant: bool) -> None:
        super().__init__()
        self.constant = constant
        self.expand = nn.Conv2d(6, 8, 1)
        self.block = nn.Conv2d(4, 4, 3, padding=1)
        self.fuse = nn.Conv2d(8, 6, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.expand(x)
        c = 4 if self.constant else x.shape[1] // 2
        return self.fuse(torch.cat((x[:, :c], self.block(x[:, c:])), 1))


class TwoSplits(nn.Module):
    """The same module twice, one splitting by the width, the other at a
    constant offset: only the second may fall back."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 1)
        self.blocks = nn.Sequential(Halves(False), Halves(True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x)).mean((2, 3))


def _model(model_class: type, *args) -> nn.Module:
    torch.manual_seed(0)
    model = model_class(*args)
    randomize_batch_norms(model, 0)
    return model.eval()


def test_halves_that_follow_the_width_share_one_group():
    for chunk in (False, True):
        analysis = analyze_channels(_model(CSPLike, chunk), SHAPE)
        assert list(analysis.splits.values()) == ['even']
        assert not analysis.fixed
        layers = analysis.layers
        assert layers['expand'].out_parts == (('expand', 6), ('expand', 6))
        assert layers['expand_bn'].in_parts == (('expand', 6), ('expand', 6))
        # the second half is the residual stream of the block
        assert layers['block1'].in_group == layers['block2'].out_group \
            == 'expand'
        assert layers['final'].in_parts == (('expand', 6), ('after', 6))
        assert sorted(analysis.groups) == ['after', 'block1', 'expand',
                                           'final']


def test_constant_split_keeps_the_channels_before_its_offset():
    analysis = analyze_channels(_model(ConstantHalves), SHAPE)
    assert list(analysis.splits.values()) == ['constant']
    assert analysis.layers['expand'].out_parts == ((None, 6), ('expand', 6))
    assert analysis.layers['final'].in_parts == ((None, 6), ('after', 6))
    assert any('Slice at constant channel offsets' in r
               for r in analysis.fixed)

    analysis = analyze_channels(_model(Res2NetLike), SHAPE)
    assert list(analysis.splits.values()) == ['constant']
    layers = analysis.layers
    # scales 0-2 are fixed, the last one (passed on) and the last scale
    # conv (read only by the concatenation) are searchable
    assert layers['conv1'].out_parts == ((None, 3), ) * 3 + (('conv1', 3), )
    assert layers['conv3'].in_parts == ((None, 3), (None, 3),
                                        ('convs.2', 3), ('conv1', 3))
    assert layers['convs.1'].in_group is None


def test_each_split_is_checked_on_its_own():
    analysis = analyze_channels(_model(TwoSplits), SHAPE)
    assert analysis.splits == {'blocks.0 (Slice)': 'even',
                               'blocks.1 (Slice)': 'constant'}
    assert analysis.layers['blocks.0.expand'].out_parts == (
        ('blocks.0.expand', 4), ('blocks.0.expand', 4))
    assert analysis.layers['blocks.1.expand'].out_parts == (
        (None, 4), ('blocks.1.expand', 4))


def test_split_neither_even_nor_constant_stays_fixed():
    analysis = analyze_channels(_model(KeepsLastChannels), SHAPE)
    assert list(analysis.splits.values()) == ['fixed']
    assert analysis.layers['a'].out_group is None
    assert not analysis.layers['a'].out_parts
    assert any('neither follow the width nor stay constant' in r
               for r in analysis.fixed)


class ShuffledUnequalParts(nn.Module):
    """A shuffle of a concatenation whose halves have other parts (2 + 2
    channels vs 4): no block-by-block tie keeps them apart."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 2, 1)
        self.b = nn.Conv2d(3, 6, 1)
        self.head = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = channel_shuffle(torch.cat((self.a(x), self.b(x)), 1), 2)
        return self.head(x).mean((2, 3))


def test_shuffled_concatenation_of_even_halves_keeps_its_parts():
    analysis = analyze_channels(_model(ShuffleV2Like), SHAPE)
    assert list(analysis.splits.values()) == ['even']
    assert not analysis.fixed
    # the passed-on half and the branch output are shuffled together:
    # one width, as the split of the next unit needs
    assert sorted(analysis.groups) == ['branch1', 'stem']
    assert analysis.layers['stem'].out_parts == (('stem', 4), ('stem', 4))
    assert analysis.layers['branch2'].out_group == 'stem'
    assert analysis.layers['head'].in_parts == (('stem', 4), ('stem', 4))

    analysis = analyze_channels(_model(ShuffledUnequalParts), SHAPE)
    assert not analysis.groups
    assert any('channel shuffle of a concatenation' in r
               for r in analysis.fixed)


@pytest.mark.parametrize('model_class,args', [
    (CSPLike, ()), (CSPLike, (True, )), (ConstantHalves, ()),
    (ShuffleV2Like, ()), (Res2NetLike, ()), (TwoSplits, ())])
def test_supernet_equals_its_export_with_splits(model_class, args,
                                                 count_flops):
    model = _model(model_class, *args)
    mutator = ChannelMutator(input_shape=SHAPE, min_width=1)
    mutator.prepare(model)
    x = torch.randn(2, *SHAPE)
    rng = random.Random(0)
    full = {g: w.max_width for g, w in mutator.widths.items()}
    for choices in [full] + [mutator.sample(rng) for _ in range(3)]:
        mutator.set_choices(choices)
        static = mutator.export_static()
        assert_export_matches_supernet(mutator, static, x)
        estimate = mutator.estimate(choices)
        assert estimate['flops'] == count_flops(static,
                                                torch.zeros(1, *SHAPE))
        assert estimate['params'] == sum(p.numel()
                                         for p in static.parameters())


def test_methods_without_parts_support_refuse_split_layers():
    model = _model(CSPLike)
    mutator = ChannelMutator(input_shape=SHAPE)
    mutator.prepare(model)
    analysis = mutator.analysis
    with pytest.raises(ConfigError, match='latency tables.*expand'):
        channel_op_grids(analysis, model, mutator.candidate_widths,
                         mutator.layer_input_shapes)
    with pytest.raises(ConfigError, match='channel masks.*expand'):
        group_readers(analysis, 'expand')
    with pytest.raises(ConfigError, match='resizing layers.*expand'):
        resize_layers(copy.deepcopy(model), analysis, {'expand': 8})
