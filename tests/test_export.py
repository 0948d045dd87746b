"""Export of subnets: static models, checkpoints, ONNX; weight loading."""
from __future__ import annotations

import copy
import random

import onnxruntime
import pytest
import torch

from mmchansearch.analysis import LogitsModule
from mmchansearch.channel_cfg import ChannelConfig
from mmchansearch.checkpoint import load_state_strictly
from mmchansearch.dynamic_ops import is_dynamic
from mmchansearch.errors import CheckpointMismatchError, ConfigError
from mmchansearch.export import (
    export_onnx,
    export_subnet,
    load_static_model,
    save_static_checkpoint,
)
from mmchansearch.memory_format import to_memory_format
from mmchansearch.mutator import ChannelMutator
from mmchansearch.supernet import (
    build_supernet,
    load_supernet_weights,
)

NUM_CONFIGS = 20
# ONNX export and an onnxruntime session cost ~1 s per subnet, so ONNX is
# checked on 3 of the 20 configs per classifier; logits (here) and FLOPs and
# params (test_estimators.py) are checked on all 20.
ONNX_SEEDS = (0, 7, 13)
INPUT_SHAPE = (3, 32, 32)
SMALL_MODEL = 'mobilenet_v3_small'


def _inputs(batch: int = 4) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1234)
    return torch.randn(batch, *INPUT_SHAPE, generator=gen)


def _logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x, mode='tensor')


# ------------------------------------------------- supernet == static model
# Both memory formats: channels-last is the default (the fast path on CPUs),
# contiguous the reference layout.
MEMORY_FORMATS = ('contiguous', 'channels_last')


@pytest.mark.parametrize('memory_format', MEMORY_FORMATS)
@pytest.mark.parametrize('seed', range(NUM_CONFIGS))
def test_subnet_logits_equal_static_model(seed, memory_format,
                                          classifier_supernet):
    to_memory_format(classifier_supernet, memory_format)
    mutator = classifier_supernet.mutator
    x = _inputs()
    mutator.set_max()
    full = _logits(classifier_supernet, x)

    mutator.sample(random.Random(seed))
    static = mutator.export_static().eval()
    subnet = _logits(classifier_supernet, x)

    torch.testing.assert_close(_logits(static, x), subnet, atol=1e-5,
                               rtol=0)
    # the widths took effect: the subnet is not the full model
    assert not torch.allclose(subnet, full, atol=1e-3)


@pytest.mark.parametrize('memory_format', MEMORY_FORMATS)
def test_supernet_gradients_equal_static_model(memory_format,
                                               classifier_supernet):
    """Weight slicing trains exactly like the static network: in train mode
    (batch statistics), the supernet's gradient is the static model's on
    the slice in use and zero outside it."""
    to_memory_format(classifier_supernet, memory_format)
    mutator = classifier_supernet.mutator
    x = _inputs(6)
    labels = torch.tensor([0, 1, 2, 3, 4, 5])
    for seed in range(3):
        mutator.sample(random.Random(100 + seed))
        classifier_supernet.train()
        static = mutator.export_static().train()
        losses = []
        for model in (classifier_supernet, static):
            model.zero_grad(set_to_none=True)
            torch.manual_seed(seed)  # the same dropout masks in both
            loss = torch.nn.functional.cross_entropy(
                model(x, mode='tensor'), labels)
            loss.backward()
            losses.append(loss.detach())
        torch.testing.assert_close(losses[0], losses[1], atol=1e-5, rtol=0)
        supernet_params = dict(
            classifier_supernet.architecture.named_parameters())
        checked = 0
        for name, param in static.named_parameters():
            full = supernet_params[name].grad
            if param.grad is None:
                assert full is None or not full.any(), name
                continue
            used = full[tuple(slice(0, n) for n in param.shape)]
            torch.testing.assert_close(used, param.grad, atol=1e-5,
                                       rtol=1e-4, msg=name)
            outside = full.clone()
            outside[tuple(slice(0, n) for n in param.shape)] = 0
            assert not outside.any(), f'{name}: gradient outside the slice'
            checked += 1
        assert checked == len(list(static.parameters()))
    classifier_supernet.eval()


def test_width_one_logits_equal_static_model(classifier_supernet):
    mutator = classifier_supernet.mutator
    mutator.set_choices({g: 1 for g in mutator.widths})
    static = mutator.export_static().eval()
    x = _inputs()
    torch.testing.assert_close(_logits(static, x),
                               _logits(classifier_supernet, x), atol=1e-5,
                               rtol=0)


@pytest.mark.parametrize('seed', ONNX_SEEDS)
def test_onnx_matches_supernet(seed, classifier_supernet, tmp_path):
    mutator = classifier_supernet.mutator
    choices = mutator.sample(random.Random(seed))
    static = export_subnet(classifier_supernet, ChannelConfig(choices))
    path = tmp_path / 'subnet.onnx'

    assert export_onnx(static, INPUT_SHAPE, str(path)) < 1e-4

    x = _inputs(3)
    session = onnxruntime.InferenceSession(
        str(path), providers=['CPUExecutionProvider'])
    onnx_logits = session.run(None, {'input': x.numpy()})[0]
    torch.testing.assert_close(torch.from_numpy(onnx_logits),
                               _logits(classifier_supernet, x), atol=1e-4,
                               rtol=0)


@pytest.mark.parametrize('memory_format', MEMORY_FORMATS)
def test_max_config_equals_original_model(classifier_name, memory_format,
                                          make_classifier, make_supernet):
    original = to_memory_format(make_classifier(classifier_name),
                                memory_format)
    supernet = make_supernet(copy.deepcopy(original),
                             memory_format=memory_format)
    supernet.mutator.set_max()
    x = _inputs()
    expected = _logits(original, x)

    assert torch.equal(_logits(supernet, x), expected)
    static = supernet.mutator.export_static().eval()
    torch.testing.assert_close(_logits(static, x), expected, atol=1e-6,
                               rtol=0)
    assert {k: v.shape for k, v in static.state_dict().items()} == \
        {k: v.shape for k, v in original.state_dict().items()}


def test_export_subnet_sets_widths_and_returns_eval_model(
        make_classifier, make_supernet):
    supernet = make_supernet(make_classifier(SMALL_MODEL)).train()
    choices = {g: max(1, w // 3) for g, w in
               supernet.mutator.max_widths.items()}
    static = export_subnet(supernet, ChannelConfig(choices))
    assert not static.training
    assert supernet.mutator.current_choices() == choices
    assert not any(is_dynamic(m) for m in static.modules())


def test_layer_called_twice_exports_a_working_model(shared_layer_net):
    """A shared layer must get one input width for all its calls (its
    input groups merged, or its channels fixed); the export must run."""
    mutator = ChannelMutator(input_shape=(3, 16, 16))
    mutator.prepare(shared_layer_net)
    mutator.set_choices({g: 3 for g in mutator.widths})
    static = mutator.export_static().eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(static(x), shared_layer_net(x),
                                   atol=1e-6, rtol=0)


# ----------------------------------------------------- static checkpoints
@pytest.fixture
def small_config(write_config, classifier_cfg):
    return write_config(classifier_cfg(SMALL_MODEL))


@pytest.fixture
def small_supernet(small_config, randomize_bn):
    supernet = build_supernet(str(small_config), INPUT_SHAPE)
    randomize_bn(supernet.architecture)
    return supernet.eval()


def test_static_checkpoint_round_trip(small_config, small_supernet,
                                      tmp_path):
    choices = small_supernet.mutator.sample(random.Random(0))
    channel_cfg = ChannelConfig(choices, resolution=32)
    static = export_subnet(small_supernet, channel_cfg)
    path = tmp_path / 'subnet.pth'
    save_static_checkpoint(static, channel_cfg, INPUT_SHAPE, str(path))

    meta = torch.load(path, map_location='cpu')['meta']
    assert meta['channel_cfg'] == channel_cfg.to_dict()
    assert meta['input_shape'] == list(INPUT_SHAPE)

    loaded = load_static_model(str(small_config), str(path))
    assert not any(is_dynamic(m) for m in loaded.modules())
    x = _inputs()
    torch.testing.assert_close(_logits(loaded, x), _logits(static, x),
                               atol=1e-6, rtol=0)


def test_static_checkpoint_needs_channel_cfg_meta(small_config,
                                                  small_supernet, tmp_path):
    path = tmp_path / 'plain.pth'
    torch.save({'state_dict': small_supernet.architecture.state_dict()},
               path)
    with pytest.raises(CheckpointMismatchError, match='no channel_cfg'):
        load_static_model(str(small_config), str(path))


def test_static_checkpoint_of_other_model_is_an_error(
        small_supernet, write_config, classifier_cfg, tmp_path):
    channel_cfg = ChannelConfig(small_supernet.mutator.sample(
        random.Random(0)))
    path = tmp_path / 'subnet.pth'
    save_static_checkpoint(export_subnet(small_supernet, channel_cfg),
                           channel_cfg, INPUT_SHAPE, str(path))
    other = classifier_cfg(SMALL_MODEL)
    other['head']['num_classes'] = 7
    with pytest.raises(CheckpointMismatchError, match='head.layers.1.fc'):
        load_static_model(str(write_config(other, 'other.py')), str(path))


# -------------------------------------------------------- weight loading
@pytest.mark.parametrize('prefix', ['', 'architecture.', 'module.'])
def test_load_supernet_weights(prefix, small_config, small_supernet,
                               tmp_path):
    state = small_supernet.architecture.state_dict()
    path = tmp_path / 'weights.pth'
    torch.save({'state_dict': {prefix + k: v for k, v in state.items()}},
               path)
    fresh = build_supernet(str(small_config), INPUT_SHAPE)
    load_supernet_weights(fresh, str(path))
    for key, value in fresh.architecture.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_load_supernet_weights_of_other_model(small_supernet, write_config,
                                              classifier_cfg, tmp_path):
    other = build_supernet(
        str(write_config(classifier_cfg('mobilenet_v3_large'), 'large.py')),
        INPUT_SHAPE)
    path = tmp_path / 'large.pth'
    torch.save({'state_dict': other.state_dict()}, path)
    with pytest.raises(CheckpointMismatchError,
                       match=f'checkpoint {path} does not match the model '
                             r'built from the config: \d+ (shape mismatch|'
                             'missing key|unexpected key)'):
        load_supernet_weights(small_supernet, str(path))


def test_load_supernet_weights_missing_file(small_supernet, tmp_path):
    with pytest.raises(CheckpointMismatchError, match='no such file'):
        load_supernet_weights(small_supernet, str(tmp_path / 'none.pth'))


def test_load_state_strictly_names_the_mismatch(tiny_net):
    state = dict(tiny_net.state_dict())
    state['fc2.weight'] = torch.zeros(3, 20)
    with pytest.raises(CheckpointMismatchError,
                       match=r'fc2.weight: checkpoint \(3, 20\) vs model '
                             r'\(5, 20\)'):
        load_state_strictly(tiny_net, state, 'bad.pth')

    state = dict(tiny_net.state_dict())
    del state['stem_bn.running_var']
    with pytest.raises(CheckpointMismatchError,
                       match='1 missing key.*stem_bn.running_var'):
        load_state_strictly(tiny_net, state, 'bad.pth')

    state = dict(tiny_net.state_dict(), extra=torch.zeros(1))
    with pytest.raises(CheckpointMismatchError,
                       match='1 unexpected key.*extra'):
        load_state_strictly(tiny_net, state, 'bad.pth')


def test_load_state_strictly_loads_and_ignores_preprocessor(tiny_net,
                                                            randomize_bn):
    source = copy.deepcopy(tiny_net)
    randomize_bn(source, seed=5)
    state = dict(source.state_dict(),
                 **{'data_preprocessor.mean': torch.zeros(3)})
    load_state_strictly(tiny_net, state, 'ok.pth')
    assert torch.equal(tiny_net.stem_bn.running_mean,
                       source.stem_bn.running_mean)


def test_build_supernet_missing_config(tmp_path):
    with pytest.raises(ConfigError, match='no such file'):
        build_supernet(str(tmp_path / 'absent.py'))


def test_build_supernet_from_toolbox_config(write_config, classifier_cfg):
    path = write_config(dict(
        type='ChannelSupernet', architecture=classifier_cfg(SMALL_MODEL),
        mutator=dict(type='ChannelMutator', input_shape=(3, 40, 40),
                     divisor=8)))
    supernet = build_supernet(str(path))
    assert supernet.mutator.input_shape == (3, 40, 40)
    assert supernet.mutator.divisor == 8
    x = torch.randn(1, 3, 40, 40)
    assert LogitsModule(supernet.architecture.eval())(x).shape == (1, 10)
