"""Exact FLOPs for conv and linear computations outside the sliceable layers,
and for the layers with a forward of their own that are sliceable.

A conv subclass with an unknown forward of its own, a Conv1d or an
``F.linear`` in a custom forward is a fixed layer: its channels stay fixed
and its FLOPs are a constant of the estimate, which must equal fvcore's
conv + linear count for every channel choice and input size. What cannot
be counted is refused. mmcv's Conv2dAdaptivePadding (EfficientNet) and
timm's BatchNormAct2d are sliced: their networks are searchable, counted
exactly and exported to the same classes, physically smaller.
"""
from __future__ import annotations

import copy
import os.path as osp
import random
from importlib.util import find_spec
from pathlib import Path

import mmpretrain
import pytest
import torch
import torch.nn.functional as F
from mmcv.cnn.bricks import Conv2dAdaptivePadding
from mmengine.config import Config
from torch import nn

from mmchansearch.analysis import analyze_channels, forward_logits
from mmchansearch.dynamic_ops import is_dynamic
from mmchansearch.errors import ConfigError
from mmchansearch.estimators import ResourceEstimator
from mmchansearch.export import export_onnx
from mmchansearch.mutator import ChannelMutator
from mmchansearch.registry import MODELS
from mmchansearch.resolution import ResolutionMixer

MMPRETRAIN_CONFIGS = osp.join(osp.dirname(mmpretrain.__file__), '.mim',
                              'configs')
ZOO_CONFIGS = Path(__file__).resolve().parents[1] / 'configs' / 'model_zoo'
EFFICIENTNET_SHAPE = (3, 64, 64)
# Models whose convs or batch norms have a forward of their own: a config
# and the class that must survive the export.
OWN_FORWARD_MODELS = {
    'efficientnet-b0': (osp.join(MMPRETRAIN_CONFIGS, 'efficientnet',
                                 'efficientnet-b0_8xb32_in1k.py'),
                        'Conv2dAdaptivePadding'),
    'efficientnetv2-b0': (osp.join(MMPRETRAIN_CONFIGS, 'efficientnet_v2',
                                   'efficientnetv2-b0_8xb32_in1k.py'),
                          'Conv2dAdaptivePadding'),
    'timm-efficientnet-b0': (str(ZOO_CONFIGS / 'timm-efficientnet-b0_in1k.py'),
                             'BatchNormAct2d'),
    'timm-regnetx-002': (str(ZOO_CONFIGS / 'timm-regnetx-002_in1k.py'),
                         'BatchNormAct2d'),
}


def _num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class PaddedConv(nn.Conv2d):
    """A Conv2d subclass with a forward of its own, as mmcv's
    Conv2dAdaptivePadding: not sliceable."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1)), self.weight, self.bias,
                        self.stride)


class FunctionalHead(nn.Module):
    """Calls ``F.linear`` on parameters of its own."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.randn(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class FixedOpsNet(nn.Module):
    """Sliceable layers around a PaddedConv, a Conv1d and a FunctionalHead.

    Searchable groups: ``stem``, ``expand`` and ``fc1``; ``conv`` (read by
    ``padded``), ``project`` (read by ``temporal``) and ``fc2`` (read by
    ``head``) stay fixed.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.stem_bn = nn.BatchNorm2d(16)
        self.conv = nn.Conv2d(16, 24, 3, stride=2, padding=1)
        self.padded = PaddedConv(24, 32, 3)
        self.expand = nn.Conv2d(32, 48, 1)
        self.project = nn.Conv2d(48, 32, 1, bias=False)
        self.temporal = nn.Conv1d(32, 20, 3)
        self.fc1 = nn.Linear(20, 16)
        self.fc2 = nn.Linear(16, 12)
        self.head = FunctionalHead(12, 5)

    def forward(self, x: torch.Tensor, mode: str = 'tensor') -> torch.Tensor:
        x = F.relu(self.stem_bn(self.stem(x)))
        x = F.relu(self.padded(F.relu(self.conv(x))))
        x = self.project(F.relu(self.expand(x)))
        x = F.relu(self.temporal(x.flatten(2))).mean(2)
        return self.head(F.relu(self.fc2(F.relu(self.fc1(x)))))


@pytest.fixture
def fixed_ops_net() -> FixedOpsNet:
    torch.manual_seed(0)
    return FixedOpsNet().eval()


@pytest.fixture(scope='module')
def efficientnet() -> nn.Module:
    """mmpretrain's EfficientNet-B0 (its Conv2dAdaptivePadding convs)."""
    cfg = Config.fromfile(osp.join(MMPRETRAIN_CONFIGS, 'efficientnet',
                                   'efficientnet-b0_8xb32_in1k.py'))
    torch.manual_seed(0)
    return MODELS.build(cfg.model).eval()


# ------------------------------------------------------------ custom model
def test_fixed_layers_are_recorded_and_named(fixed_ops_net):
    analysis = analyze_channels(fixed_ops_net, (3, 16, 16))
    assert list(analysis.groups) == ['stem', 'expand', 'fc1']
    fixed = analysis.fixed_layers
    assert list(fixed) == ['padded', 'temporal', 'head']
    assert [fixed[n].ops for n in fixed] == [['conv2d'], ['conv1d'],
                                            ['linear']]
    # padded: 32 x 24 x 3x3 per position, 8x8 positions; temporal: 62.
    assert fixed['padded'].macs == 32 * 24 * 9 * 64
    assert fixed['temporal'].output_positions == 62
    for name in fixed:
        assert any(r.startswith(f'{name}: ') for r in analysis.fixed)


def test_custom_model_counts_exactly(fixed_ops_net, count_flops):
    inputs = torch.zeros(1, 3, 16, 16)
    original = copy.deepcopy(fixed_ops_net)
    mutator = ChannelMutator(input_shape=(3, 16, 16), divisor=1,
                             width_ratios=[i / 16 for i in range(1, 17)])
    mutator.prepare(fixed_ops_net)
    full = mutator.estimate(mutator.max_widths)
    assert full['flops'] == count_flops(original, inputs)
    assert full['params'] == _num_params(original)
    assert sum(mutator.estimator.layer_flops({}).values()) == full['flops']
    for seed in range(3):
        mutator.sample(random.Random(seed))
        static = mutator.export_static()
        usage = mutator.estimate()
        assert usage['flops'] == count_flops(static, inputs)
        assert usage['params'] == _num_params(static)


def test_input_of_a_fixed_layer_keeps_its_width():
    """A fixed layer whose output is unused still pins its input."""

    class AuxNet(nn.Module):

        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3)
            self.aux = PaddedConv(8, 4, 3)
            self.fc = nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = F.relu(self.stem(x))
            self.aux(x)
            return self.fc(x.mean((2, 3)))

    analysis = analyze_channels(AuxNet(), (3, 8, 8))
    assert 'stem' not in analysis.groups
    assert any('read by aux' in reason for reason in analysis.fixed)


# ------------------------------------------------------------ EfficientNet
def test_efficientnet_counts_exactly(efficientnet, count_flops):
    inputs = torch.zeros(1, *EFFICIENTNET_SHAPE)
    analysis = analyze_channels(efficientnet, EFFICIENTNET_SHAPE)
    usage = ResourceEstimator(analysis, efficientnet).estimate({})
    assert usage['flops'] == count_flops(efficientnet, inputs)
    assert usage['params'] == _num_params(efficientnet)


def _class_counts(model: nn.Module, class_name: str) -> list[int]:
    """Output widths of the layers of ``class_name``, in module order."""
    return [getattr(m, 'out_channels', getattr(m, 'num_features', 0))
            for m in model.modules() if type(m).__name__ == class_name]


@pytest.mark.parametrize('name', list(OWN_FORWARD_MODELS))
def test_own_forward_layers_are_searched_and_exported(name, make_supernet,
                                                      randomize_bn,
                                                      count_flops):
    """Supernet at full width == the original model; a random subnet ==
    its exported static model, whose convs still pad adaptively (batch
    norms still activate) and whose FLOPs and params the estimator gives
    exactly (fvcore, torch)."""
    config, class_name = OWN_FORWARD_MODELS[name]
    if 'timm' in config and find_spec('timm') is None:
        pytest.skip('timm is not installed')
    torch.manual_seed(0)
    original = MODELS.build(Config.fromfile(config).model)
    randomize_bn(original)
    original.eval()
    x = torch.randn(2, *EFFICIENTNET_SHAPE)
    with torch.no_grad():
        expected = forward_logits(original, x)
    supernet = make_supernet(copy.deepcopy(original),
                             memory_format='contiguous',
                             input_shape=EFFICIENTNET_SHAPE, divisor=1,
                             width_ratios=[i / 8 for i in range(1, 9)])
    mutator = supernet.mutator
    assert not mutator.analysis.fixed_layers
    own = [n for n, m in supernet.named_modules() if is_dynamic(m)
           and type(m).__name__ == f'Dynamic{class_name}']
    assert own, f'no {class_name} was made dynamic'
    with torch.no_grad():
        assert torch.equal(forward_logits(supernet, x), expected)

    mutator.sample(random.Random(0))
    static = mutator.export_static().eval()
    with torch.no_grad():
        subnet = forward_logits(supernet, x)
        torch.testing.assert_close(forward_logits(static, x), subnet,
                                   atol=1e-4 * subnet.abs().max().item(),
                                   rtol=0)
    assert not torch.allclose(subnet, expected, atol=1e-3)
    assert not any(is_dynamic(m) for m in static.modules())
    widths = _class_counts(static, class_name)
    assert len(widths) == len(_class_counts(original, class_name))
    assert sum(widths) < sum(_class_counts(original, class_name))
    usage = mutator.estimate()
    assert usage['flops'] == count_flops(static,
                                         torch.zeros(1, *EFFICIENTNET_SHAPE))
    assert usage['params'] == _num_params(static)


def test_efficientnet_subnet_exports_to_onnx(efficientnet, make_supernet,
                                             tmp_path):
    """A small EfficientNet subnet: its ONNX graph (the adaptive padding
    fixed at the export's input size) gives torch's logits."""
    supernet = make_supernet(copy.deepcopy(efficientnet),
                             memory_format='contiguous',
                             input_shape=(3, 32, 32), divisor=1,
                             width_ratios=[0.25, 0.5])
    supernet.mutator.sample(random.Random(1))
    static = supernet.mutator.export_static().eval()
    assert any(type(m) is Conv2dAdaptivePadding and m.stride == (2, 2)
               for m in static.modules())
    assert export_onnx(static, (3, 32, 32), str(tmp_path / 'e.onnx')) < 1e-4


def test_efficientnet_counts_exactly_at_other_resolutions(efficientnet,
                                                          count_flops):
    analysis = analyze_channels(efficientnet, EFFICIENTNET_SHAPE)
    estimator = ResourceEstimator(analysis, efficientnet)
    resolutions = [32, 48, 64]
    mixer = ResolutionMixer(efficientnet, EFFICIENTNET_SHAPE, resolutions)
    try:
        for resolution, positions in zip(resolutions, mixer.positions):
            flops = estimator.soft_estimate({}, positions)['flops']
            assert flops == pytest.approx(count_flops(
                efficientnet, torch.zeros(1, 3, resolution, resolution)),
                rel=1e-12)
    finally:
        mixer.remove()


# ---------------------------------------------------------------- refusals
def test_positions_without_the_fixed_layers_are_refused(fixed_ops_net):
    analysis = analyze_channels(fixed_ops_net, (3, 16, 16))
    estimator = ResourceEstimator(analysis, fixed_ops_net)
    positions = {name: 1 for name in analysis.layers}
    with pytest.raises(ConfigError, match=r"'padded', 'temporal', 'head'"):
        estimator.soft_estimate({}, positions)


def test_cost_not_scaling_with_positions_refuses_resolution_search():
    """A product over the positions themselves (attention-like) grows
    faster than its output positions: no resolution estimate."""

    class GramNet(nn.Module):

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)
            self.fc = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor, mode: str = 'tensor'
                    ) -> torch.Tensor:
            tokens = self.conv(x).flatten(2)
            gram = tokens.transpose(1, 2) @ tokens  # (HW, HW)
            return self.fc((gram @ tokens.transpose(1, 2)).mean(1))

    with pytest.raises(ConfigError, match='do not scale with its output'):
        ResolutionMixer(GramNet(), (3, 8, 8), [4, 8])


def test_uncounted_conv_or_linear_is_refused():
    """``F.multi_head_attention_forward`` hides its linear layers from the
    trace: the estimate is refused, not counted low."""

    class AttentionNet(nn.Module):

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 1)
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
            self.fc = nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            tokens = self.conv(x).flatten(2).transpose(1, 2)
            return self.fc(self.attn(tokens, tokens, tokens)[0].mean(1))

    model = AttentionNet().eval()
    analysis = analyze_channels(model, (3, 4, 4))
    assert analysis.uncounted == ['attn: multi_head_attention_forward']
    estimator = ResourceEstimator(analysis, model)
    with pytest.raises(ConfigError, match='attn: multi_head_attention'):
        estimator.estimate({})
    with pytest.raises(ConfigError, match='attn: multi_head_attention'):
        estimator.layer_flops({})


# ------------------------------------------------------------------ tools
FIXED_NET = """
import torch
from mmengine.model import BaseModule
from torch import nn

from mmpretrain.registry import MODELS


@MODELS.register_module()
class UnfoldNet(BaseModule):
    \"\"\"Every conv's output channels pass a reshape mixing them with
    space.\"\"\"

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 1)

    @staticmethod
    def mix(x):
        n, c, h, w = x.shape
        return x.reshape(n, c * 2, h // 2, w).reshape(n, c, h, w)

    def forward(self, x):
        return (self.mix(self.conv2(self.mix(self.conv(x)))), )
"""


def test_template_of_a_model_without_groups_says_why(
        write_config, run_tool, tmp_path, monkeypatch):
    (tmp_path / 'unfold_net.py').write_text(FIXED_NET)
    monkeypatch.setenv('PYTHONPATH', str(tmp_path))
    config = write_config(dict(
        type='ImageClassifier', backbone=dict(type='UnfoldNet'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=3, in_channels=4)))
    config.write_text(config.read_text() + "custom_imports = dict("
                      "imports=['unfold_net'], allow_failed_imports=False)\n")
    result = run_tool('tools/get_channel_template.py', config, '-o',
                      tmp_path / 't.yaml', '--shape', '32', '32',
                      check=False)
    assert result.returncode == 2, result.stderr
    assert 'Traceback' not in result.stderr
    errors = [line for line in result.stderr.splitlines()
              if line.startswith('error:')]
    assert len(errors) == 1, result.stderr
    assert 'no searchable channel group' in errors[0]
    assert 'input passes unsupported op(s)' in errors[0]
