"""Dynamic layers: slicing, batch-norm statistics, in-place conversion."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from mmcv.cnn.bricks import Conv2dAdaptivePadding
from timm.layers import BatchNormAct2d
from torch import nn

from mmchansearch.dynamic_ops import (
    ChannelWidth,
    DynamicBatchNorm1d,
    DynamicBatchNorm2d,
    DynamicBatchNormAct2d,
    DynamicConv2d,
    DynamicConv2dAdaptivePadding,
    DynamicLinear,
    is_dynamic,
    make_dynamic,
)
from mmchansearch.mutator import ChannelMutator


def _storage_is_own(tensor: torch.Tensor) -> bool:
    """Whether ``tensor`` owns a storage of exactly its own size."""
    return tensor.untyped_storage().nbytes() == \
        tensor.numel() * tensor.element_size()


@pytest.fixture
def conv() -> nn.Conv2d:
    torch.manual_seed(0)
    return nn.Conv2d(6, 8, 3, padding=1)


@pytest.fixture
def batch_norm(randomize_bn) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(8)
    randomize_bn(bn)
    bn.num_batches_tracked.fill_(3)
    return bn


# ------------------------------------------------------------------ conv
def test_conv_uses_first_channels(conv):
    ref = copy.deepcopy(conv)
    make_dynamic(conv, ChannelWidth('g', 8, 5))
    x = torch.randn(2, 4, 7, 7)
    expected = F.conv2d(x, ref.weight[:5, :4], ref.bias[:5], padding=1)
    out = conv(x)
    assert out.shape == (2, 5, 7, 7)
    torch.testing.assert_close(out, expected, atol=0, rtol=0)


def test_conv_at_full_width_is_the_original(conv):
    ref = copy.deepcopy(conv)
    make_dynamic(conv, ChannelWidth('g', 8, 8))
    x = torch.randn(2, 6, 7, 7)
    assert torch.equal(conv(x), ref(x))


class _PaddedConv(nn.Conv2d):
    """A Conv2d subclass with a forward of its own that no dynamic class
    reproduces."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1)), self.weight, self.bias,
                        self.stride)


def test_conv_subclass_with_its_own_forward_is_never_converted():
    """Slicing an unknown forward could compute something else, so
    make_dynamic refuses it, and a mutator keeps its channels fixed: the
    prepared model computes exactly what it did."""
    torch.manual_seed(0)
    conv = _PaddedConv(3, 8, 3, stride=2)
    with pytest.raises(TypeError, match='_PaddedConv'):
        make_dynamic(conv, ChannelWidth('g', 8, 8))
    model = nn.Sequential(conv, nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 16, 1), nn.BatchNorm2d(16)).eval()
    x = torch.randn(2, 3, 15, 15)
    ref = model(x)
    mutator = ChannelMutator(input_shape=(3, 15, 15))
    mutator.prepare(model)
    assert type(model[0]) is _PaddedConv
    groups = mutator.analysis.groups.values()
    assert not any('0' in g.producers for g in groups)
    torch.testing.assert_close(model(x), ref, atol=0, rtol=0)


# ------------------------------------------- mmcv's Conv2dAdaptivePadding
@pytest.mark.parametrize('size,stride,groups', [(15, 2, 1), (16, 2, 1),
                                                (15, 1, 1), (15, 2, 6)])
def test_adaptive_padding_conv_pads_then_slices(size, stride, groups):
    """'same' padding from the input size (8x8 out of 15x15 at stride 2,
    where a plain slice of the weights would give 7x7), at any width."""
    torch.manual_seed(0)
    conv = Conv2dAdaptivePadding(6, 6 if groups > 1 else 8, 3, stride,
                                 groups=groups)
    ref = copy.deepcopy(conv)
    x = torch.randn(2, 6, size, size)
    expected_full = ref(x)
    make_dynamic(conv, None if groups > 1 else ChannelWidth('g', 8, 8),
                 depthwise=groups > 1)
    assert isinstance(conv, DynamicConv2dAdaptivePadding)
    torch.testing.assert_close(conv(x), expected_full, atol=0, rtol=0)
    if groups > 1:  # depthwise: 4 of 6 channels
        small = Conv2dAdaptivePadding(4, 4, 3, stride, groups=4)
        small.weight.data, small.bias.data = ref.weight[:4], ref.bias[:4]
    else:  # 5 of 8 outputs from 4 of 6 inputs
        conv.out_width.current = 5
        small = Conv2dAdaptivePadding(4, 5, 3, stride)
        small.weight.data = ref.weight[:5, :4]
        small.bias.data = ref.bias[:5]
    x = x[:, :4]
    out = conv(x)
    assert out.shape[-1] == -(-size // stride)
    torch.testing.assert_close(out, small(x), atol=1e-6, rtol=0)
    static = conv.to_static(4)
    assert type(static) is Conv2dAdaptivePadding
    assert (static.in_channels, static.out_channels, static.groups) == (
        small.in_channels, small.out_channels, small.groups)
    assert static.padding == (0, 0)
    torch.testing.assert_close(static(x), out, atol=1e-6, rtol=0)
    assert _storage_is_own(static.weight)


# -------------------------------------------------- timm's BatchNormAct2d
@pytest.fixture
def batch_norm_act(randomize_bn) -> nn.Module:
    bn = BatchNormAct2d(8, act_layer=nn.SiLU)
    randomize_bn(bn)
    return bn


@pytest.mark.parametrize('training', [False, True])
def test_batch_norm_act_normalizes_then_activates(batch_norm_act, training):
    ref = copy.deepcopy(batch_norm_act).train(training)
    batch_norm_act.train(training)
    x = torch.randn(4, 8, 5, 5)
    expected = ref(x)
    make_dynamic(batch_norm_act, None)
    assert isinstance(batch_norm_act, DynamicBatchNormAct2d)
    ref_state = copy.deepcopy(batch_norm_act.state_dict())
    torch.testing.assert_close(batch_norm_act(x), expected, atol=0, rtol=0)
    batch_norm_act.load_state_dict(ref_state)
    # 5 of 8 channels: timm's BatchNormAct2d of 5 channels, same slices
    small = BatchNormAct2d(5, act_layer=nn.SiLU).train(training)
    for name, tensor in ref_state.items():
        getattr(small, name).data = tensor[:5].clone() \
            if tensor.dim() else tensor.clone()
    out = batch_norm_act(x[:, :5])
    torch.testing.assert_close(out, small(x[:, :5]), atol=1e-6, rtol=0)
    assert out.min() < 0  # SiLU ran, not ReLU or nothing
    if training:  # running statistics of the first channels updated
        torch.testing.assert_close(batch_norm_act.running_mean[:5],
                                   small.running_mean)
        assert torch.equal(batch_norm_act.running_mean[5:],
                           ref_state['running_mean'][5:])


def test_batch_norm_act_to_static_keeps_its_activation(batch_norm_act):
    batch_norm_act.eval()
    make_dynamic(batch_norm_act, None)
    static = batch_norm_act.to_static(5).eval()
    assert type(static) is BatchNormAct2d
    assert static.num_features == 5 and isinstance(static.act, nn.SiLU)
    assert static.act is not batch_norm_act.act
    x = torch.randn(2, 5, 4, 4)
    torch.testing.assert_close(static(x), batch_norm_act(x), atol=1e-6,
                               rtol=0)
    assert torch.equal(static.running_var, batch_norm_act.running_var[:5])


def test_depthwise_conv_follows_its_input():
    torch.manual_seed(0)
    dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
    ref = copy.deepcopy(dw)
    make_dynamic(dw, None, depthwise=True)
    x = torch.randn(2, 5, 6, 6)
    out = dw(x)
    expected = F.conv2d(x, ref.weight[:5], ref.bias[:5], padding=1, groups=5)
    torch.testing.assert_close(out, expected, atol=0, rtol=0)
    static = dw.to_static(5)
    assert (static.in_channels, static.out_channels, static.groups) == \
        (5, 5, 5)
    torch.testing.assert_close(static(x), out, atol=1e-6, rtol=0)


def test_conv_with_reflect_padding_matches_static():
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 8, 3, padding=1, padding_mode='reflect')
    make_dynamic(conv, ChannelWidth('g', 8, 3))
    x = torch.randn(2, 4, 7, 7)
    static = conv.to_static(4)
    assert type(static) is nn.Conv2d and static.padding_mode == 'reflect'
    torch.testing.assert_close(conv(x), static(x), atol=1e-6, rtol=0)


def test_conv_to_static_copies_the_slice(conv):
    make_dynamic(conv, ChannelWidth('g', 8, 5))
    static = conv.to_static(4)
    assert type(static) is nn.Conv2d
    assert static.weight.shape == (5, 4, 3, 3)
    assert torch.equal(static.weight, conv.weight[:5, :4])
    assert torch.equal(static.bias, conv.bias[:5])
    for tensor in (static.weight, static.bias):
        assert _storage_is_own(tensor)
    assert static.weight.data_ptr() != conv.weight.data_ptr()


# ---------------------------------------------------------------- linear
def test_linear_uses_first_features():
    torch.manual_seed(0)
    linear = nn.Linear(10, 6)
    ref = copy.deepcopy(linear)
    make_dynamic(linear, ChannelWidth('g', 6, 4))
    x = torch.randn(3, 7)
    out = linear(x)
    torch.testing.assert_close(out, x @ ref.weight[:4, :7].T + ref.bias[:4],
                               atol=1e-6, rtol=0)
    static = linear.to_static(7)
    assert type(static) is nn.Linear
    assert static.weight.shape == (4, 7)
    assert _storage_is_own(static.weight) and _storage_is_own(static.bias)
    torch.testing.assert_close(static(x), out, atol=1e-6, rtol=0)


def test_linear_without_width_keeps_all_outputs():
    linear = nn.Linear(10, 6, bias=False)
    make_dynamic(linear, None)
    assert linear(torch.randn(2, 3)).shape == (2, 6)
    assert linear.to_static(3).bias is None


# ------------------------------------------------------------ batch norm
@pytest.mark.parametrize('momentum', [0.1, None])
def test_batch_norm_train_updates_only_first_channels(batch_norm, momentum):
    batch_norm.momentum = momentum
    before = copy.deepcopy(batch_norm)
    static = before.__class__(5, momentum=momentum)
    static.load_state_dict({k: v[:5] if v.dim() else v
                            for k, v in before.state_dict().items()})
    make_dynamic(batch_norm, None)
    batch_norm.train()
    static.train()
    x = torch.randn(4, 5, 6, 6) * 2 + 1

    torch.testing.assert_close(batch_norm(x), static(x), atol=1e-6, rtol=0)

    for name in ('running_mean', 'running_var'):
        new, old = getattr(batch_norm, name), getattr(before, name)
        torch.testing.assert_close(new[:5], getattr(static, name),
                                   atol=1e-6, rtol=0)
        assert not torch.equal(new[:5], old[:5]), name
        assert torch.equal(new[5:], old[5:]), name
    assert int(batch_norm.num_batches_tracked) == 4


def test_batch_norm_eval_uses_first_statistics(batch_norm):
    ref = copy.deepcopy(batch_norm).eval()
    make_dynamic(batch_norm, None)
    batch_norm.eval()
    x = torch.randn(2, 3, 4, 4)
    expected = F.batch_norm(x, ref.running_mean[:3], ref.running_var[:3],
                            ref.weight[:3], ref.bias[:3], False, 0.0,
                            ref.eps)
    torch.testing.assert_close(batch_norm(x), expected, atol=0, rtol=0)
    assert torch.equal(batch_norm.running_mean, ref.running_mean)


def test_batch_norm_to_static_copies_the_slice(batch_norm):
    make_dynamic(batch_norm, None)
    static = batch_norm.to_static(5)
    assert type(static) is nn.BatchNorm2d and static.num_features == 5
    for name in ('weight', 'bias', 'running_mean', 'running_var'):
        tensor = getattr(static, name)
        assert torch.equal(tensor, getattr(batch_norm, name)[:5]), name
        assert _storage_is_own(tensor), name
    assert int(static.num_batches_tracked) == 3
    x = torch.randn(2, 5, 3, 3)
    batch_norm.eval()
    torch.testing.assert_close(static.eval()(x), batch_norm(x), atol=1e-6,
                               rtol=0)


def test_batch_norm_1d_slices_features(randomize_bn):
    bn = nn.BatchNorm1d(6)
    randomize_bn(bn)
    make_dynamic(bn, None)
    assert isinstance(bn, DynamicBatchNorm1d)
    bn.eval()
    x = torch.randn(3, 4)
    static = bn.to_static(4)
    assert type(static) is nn.BatchNorm1d
    torch.testing.assert_close(bn(x), static.eval()(x), atol=1e-6, rtol=0)


# ------------------------------------------------------------ conversion
def test_make_dynamic_swaps_class_in_place(conv, batch_norm):
    assert make_dynamic(conv, None) is conv
    assert make_dynamic(batch_norm, None) is batch_norm
    assert type(conv) is DynamicConv2d
    assert type(batch_norm) is DynamicBatchNorm2d
    assert is_dynamic(conv) and is_dynamic(batch_norm)
    assert not is_dynamic(nn.Conv2d(1, 1, 1))


def test_make_dynamic_rejects_other_layers():
    with pytest.raises(TypeError, match='LayerNorm'):
        make_dynamic(nn.LayerNorm(4), None)


def test_prepare_keeps_parameters_and_state_dict_keys(tiny_net):
    params = dict(tiny_net.named_parameters())
    buffers = dict(tiny_net.named_buffers())
    keys = list(tiny_net.state_dict())
    ChannelMutator(input_shape=(3, 16, 16)).prepare(tiny_net)

    assert list(tiny_net.state_dict()) == keys
    for name, param in tiny_net.named_parameters():
        assert param is params[name], name
    for name, buffer in tiny_net.named_buffers():
        assert buffer is buffers[name], name
    assert type(tiny_net.stem) is DynamicConv2d
    assert type(tiny_net.dw) is DynamicConv2d and tiny_net.dw.depthwise
    assert type(tiny_net.fc_bn) is DynamicBatchNorm1d
    assert type(tiny_net.fc2) is DynamicLinear


def test_prepare_keeps_classifier_parameters(make_classifier,
                                             make_supernet):
    model = make_classifier('mobilenet_v3_small')
    params = dict(model.named_parameters())
    keys = list(model.state_dict())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    make_supernet(model)
    assert list(model.state_dict()) == keys
    for name, param in model.named_parameters():
        assert param is params[name], name
    optimizer_params = optimizer.param_groups[0]['params']
    assert [id(p) for p in optimizer_params] == \
        [id(p) for p in model.parameters()]
    assert sum(is_dynamic(m) for m in model.modules()) > 0
