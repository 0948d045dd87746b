"""The layer-kind handlers against the layers themselves.

Each handler's FLOPs/params coefficients give fvcore's count and torch's
parameter count of a real layer, its latency op builds a layer of the same
computation, its resize gives a working layer of the new widths, and its
mask multiplies the channel dim of that kind.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from mmchansearch.layer_kinds import (
    LAYER_KINDS,
    BatchNorm,
    LayerKind,
    register_layer_kind,
)

# kind -> (a layer of it, one input sample's shape)
LAYERS = {
    'conv': (lambda: nn.Conv2d(8, 12, 3, stride=2, padding=1, groups=2),
             (8, 9, 9)),
    'dwconv': (lambda: nn.Conv2d(8, 8, 5, padding=2, groups=8), (8, 6, 6)),
    'linear': (lambda: nn.Linear(10, 7), (10, )),
    'bn': (lambda: nn.BatchNorm2d(6), (6, 4, 4)),
}


def _widths(layer: nn.Module) -> tuple[int, int]:
    if isinstance(layer, nn.Linear):
        return layer.in_features, layer.out_features
    if isinstance(layer, nn.Conv2d):
        return layer.in_channels, layer.out_channels
    return layer.num_features, layer.num_features


@pytest.mark.parametrize('kind', sorted(LAYERS))
def test_cost_counts_the_layer(kind, count_flops):
    layer = LAYERS[kind][0]()
    x = torch.zeros(1, *LAYERS[kind][1])
    out = layer(x)
    handler = LAYER_KINDS[kind]
    positions = out.numel() // handler.channels(out)
    c = handler.cost(layer, positions)
    cin, cout = _widths(layer)
    cin //= c.groups
    flops = (c.flops_per_pair * cin + c.flops_per_out) * cout
    params = (c.params_per_pair * cin + c.params_per_out) * cout
    assert flops == (0 if kind == 'bn' else count_flops(layer, x))
    assert params == sum(p.numel() for p in layer.parameters())


@pytest.mark.parametrize('kind', ['conv', 'dwconv', 'linear'])
def test_op_builds_the_same_computation(kind):
    layer = LAYERS[kind][0]()
    cin, cout = _widths(layer)
    signature, build, shape = LAYER_KINDS[kind].op(layer, cin, cout,
                                                   LAYERS[kind][1])
    built = build()
    assert shape == LAYERS[kind][1]
    assert _widths(built) == (cin, cout)
    assert str(cin) in signature and str(cout) in signature
    for name in ('kernel_size', 'stride', 'padding', 'groups'):
        assert getattr(built, name, None) == getattr(layer, name, None)
    assert LAYER_KINDS['bn'].op(nn.BatchNorm2d(4), 4, 4, (4, 2, 2)) is None


@pytest.mark.parametrize('kind,cin,cout', [('conv', 4, 6), ('dwconv', 6, 6),
                                           ('linear', 3, 5), ('bn', 9, 9)])
def test_resize_gives_a_working_layer_of_the_new_widths(kind, cin, cout):
    layer = LAYERS[kind][0]()
    LAYER_KINDS[kind].resize(layer, cin, cout)
    assert _widths(layer) == (cin, cout)
    shape = (cin, ) + tuple(LAYERS[kind][1][1:])
    out = layer(torch.randn(2, *shape))
    assert LAYER_KINDS[kind].channels(out) == cout
    with pytest.raises(ValueError, match='multiples of the 2 groups'):
        LAYER_KINDS['conv'].resize(LAYERS['conv'][0](), 5, 6)


@pytest.mark.parametrize('kind,shape,dim', [('conv', (2, 3, 4, 4), 1),
                                            ('linear', (2, 5, 3), -1),
                                            ('bn', (2, 3), 1)])
def test_mask_multiplies_the_channel_dim(kind, shape, dim):
    x = torch.ones(shape)
    mask = torch.tensor([0.0, 1.0, 2.0])
    out = LAYER_KINDS[kind].mask(x, mask)
    expected = mask.view([-1 if d == dim % len(shape) else 1
                          for d in range(len(shape))])
    torch.testing.assert_close(out, x * expected)
    per_sample = torch.stack([mask, 2 * mask])  # (N, C)
    out = LAYER_KINDS[kind].mask(x, per_sample)
    assert torch.equal(out[1], 2 * out[0])


def test_a_kind_is_registered_once():
    with pytest.raises(ValueError, match="'bn' is registered already"):
        register_layer_kind(BatchNorm())


def test_a_kind_must_give_its_cost_and_resize():
    class Partial(LayerKind):  # no cost, no resize
        name = 'partial'

    with pytest.raises(TypeError, match='abstract'):
        Partial()
