"""The analysis tools, run in a subprocess as a user runs them.

Covers tools/get_channel_template.py, get_flops.py and export_subnet.py.
"""
from __future__ import annotations

import random
import re
import subprocess
from pathlib import Path

import pytest
import torch
import yaml
from conftest import run_tool_process

from mmchansearch.channel_cfg import (
    ChannelConfig,
    load_channel_cfg,
    save_channel_cfg,
    validate_channels,
)
from mmchansearch.export import load_static_model
from mmchansearch.supernet import build_supernet

REPO = Path(__file__).resolve().parents[1]
INPUT_SHAPE = (3, 32, 32)
SHAPE_ARGS = ['--shape', '32', '32']


def _run_tool(tool: str, *args: str) -> subprocess.CompletedProcess:
    return run_tool_process(REPO / 'tools' / tool, *args, check=False,
                            timeout=300)


def _assert_user_error(result: subprocess.CompletedProcess,
                       *needles: str) -> None:
    """Exit code 2, one ``error:`` line naming ``needles``, no traceback."""
    assert result.returncode == 2, result.stderr
    assert 'Traceback' not in result.stderr
    errors = [line for line in result.stderr.splitlines()
              if line.startswith('error:')]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0]


@pytest.fixture
def config(write_config, classifier_cfg) -> Path:
    return write_config(classifier_cfg('mobilenet_v3_small'))


@pytest.fixture
def supernet(config):
    return build_supernet(str(config), INPUT_SHAPE).eval()


@pytest.fixture
def subnet_cfg(supernet, tmp_path) -> Path:
    """A random valid channel_cfg of ``supernet`` on disk."""
    choices = supernet.mutator.sample(random.Random(0))
    path = tmp_path / 'subnet.yaml'
    save_channel_cfg(ChannelConfig(choices), path)
    return path


# -------------------------------------------------------------- template
def test_template_lists_every_group(config, supernet, tmp_path):
    out = tmp_path / 'template.yaml'
    result = _run_tool('get_channel_template.py', config, '-o', out,
                       *SHAPE_ARGS)
    assert result.returncode == 0, result.stderr
    mutator = supernet.mutator
    assert f'wrote {len(mutator.widths)} groups' in result.stdout

    cfg = load_channel_cfg(out)
    validate_channels(cfg, mutator.max_widths)
    assert cfg.channels == mutator.max_widths
    assert cfg.meta['input_shape'] == list(INPUT_SHAPE)
    assert cfg.meta['flops'] == mutator.estimate(mutator.max_widths)['flops']

    commented = dict(re.findall(r'^  (\S+): \d+  # max (\d+)$',
                                out.read_text(), flags=re.MULTILINE))
    assert {k: int(v) for k, v in commented.items()} == mutator.max_widths


# ------------------------------------------------------------- get_flops
def test_get_flops_prints_full_and_subnet(config, supernet, subnet_cfg):
    result = _run_tool('get_flops.py', config, '--channel-cfg', subnet_cfg,
                       *SHAPE_ARGS)
    assert result.returncode == 0, result.stderr
    mutator = supernet.mutator
    full = mutator.estimate(mutator.max_widths)
    sub = mutator.estimate(load_channel_cfg(subnet_cfg).channels)
    assert 'input shape: 3x32x32' in result.stdout
    assert (f'full model: FLOPs {full["flops"] / 1e6:.2f}M, params '
            f'{full["params"] / 1e6:.3f}M') in result.stdout
    assert (f'{subnet_cfg}: FLOPs {sub["flops"] / 1e6:.2f}M') \
        in result.stdout


@pytest.mark.parametrize('tool', ['get_flops.py', 'export_subnet.py'])
def test_channel_cfg_for_another_input_shape_warns_or_fails_strictly(
        tool, config, supernet, tmp_path):
    """A template made at 32x32 read at 48x48: same groups, other model."""
    path = tmp_path / 'made_at_32.yaml'
    mutator = supernet.mutator
    save_channel_cfg(mutator.channel_config(mutator.max_widths, str(config),
                                            'test'), path)
    extra = ['-o', tmp_path / 'out.pth'] if tool == 'export_subnet.py' \
        else []
    result = _run_tool(tool, config, '--channel-cfg', path, '--shape', '48',
                       '48', *extra)
    assert result.returncode == 0, result.stderr
    assert 'made for input shape [3, 32, 32], this model is traced at ' \
        '[3, 48, 48]' in result.stdout + result.stderr
    result = _run_tool(tool, config, '--channel-cfg', path, '--shape', '48',
                       '48', *extra, '--strict')
    _assert_user_error(result, 'may be for another model', 'drop --strict')


# --------------------------------------------------------- export_subnet
def test_a_plain_trained_network_exports_as_trained(config, tmp_path,
                                                     classifier_cfg,
                                                     randomize_bn):
    """A plain classifier's checkpoint (e.g. a retrained ReXNet) needs no
    channel_cfg: the network exports as it was trained."""
    from mmengine.registry import DefaultScope

    from mmchansearch.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        model = MODELS.build(classifier_cfg('mobilenet_v3_small')).eval()
    randomize_bn(model)
    weights = tmp_path / 'trained.pth'
    torch.save({'state_dict': model.state_dict()}, weights)
    out, onnx = tmp_path / 'static.pth', tmp_path / 'static.onnx'
    result = _run_tool('export_subnet.py', config, '--checkpoint', weights,
                       '-o', out, '--onnx', onnx, *SHAPE_ARGS)
    assert result.returncode == 0, result.stderr
    static = load_static_model(str(config), str(out))
    inputs = torch.randn(2, *INPUT_SHAPE)
    with torch.no_grad():
        assert torch.allclose(static(inputs, mode='tensor'),
                              model(inputs, mode='tensor'), atol=1e-5)
    assert onnx.stat().st_size > 0


def test_export_subnet_writes_checkpoint_and_onnx(config, supernet,
                                                  subnet_cfg, tmp_path,
                                                  randomize_bn):
    randomize_bn(supernet.architecture)
    weights = tmp_path / 'supernet.pth'
    torch.save({'state_dict': supernet.state_dict()}, weights)
    out, onnx = tmp_path / 'subnet.pth', tmp_path / 'subnet.onnx'

    result = _run_tool('export_subnet.py', config, '--channel-cfg',
                       subnet_cfg, '--checkpoint', weights, '-o', out,
                       '--onnx', onnx, *SHAPE_ARGS)
    assert result.returncode == 0, result.stderr
    assert onnx.stat().st_size > 0
    diff = re.search(r'max \|diff\| (\S+)', result.stdout)
    assert diff and float(diff.group(1)) < 1e-4, result.stdout

    static = load_static_model(str(config), str(out))
    supernet.mutator.set_choices(load_channel_cfg(subnet_cfg))
    x = torch.randn(2, *INPUT_SHAPE)
    with torch.no_grad():
        torch.testing.assert_close(static(x, mode='tensor'), supernet(x),
                                   atol=1e-5, rtol=0)


# ----------------------------------------------------------- user errors
@pytest.mark.parametrize('tool', ['get_flops.py', 'export_subnet.py'])
def test_unknown_group_is_a_one_line_error(tool, config, supernet,
                                           tmp_path):
    path = tmp_path / 'bad.yaml'
    channels = dict(supernet.mutator.max_widths, **{'backbone.nope': 4})
    save_channel_cfg(ChannelConfig(channels), path)
    out = tmp_path / 'out.pth'
    extra = ['-o', out] if tool == 'export_subnet.py' else []
    result = _run_tool(tool, config, '--channel-cfg', path, *extra,
                       *SHAPE_ARGS)
    _assert_user_error(result, "'backbone.nope'", str(path))
    assert not out.exists()


@pytest.mark.parametrize('edit, needles', [
    pytest.param(lambda data, group: data['channels'].update({group: 0}),
                 ('width 0', 'valid range 1..'), id='zero-width'),
    pytest.param(lambda data, group: data.update(chanels=1),
                 ("'chanels'",), id='unknown-top-level-key'),
])
def test_bad_channel_cfg_is_a_one_line_error(edit, needles, config,
                                             supernet, tmp_path):
    group = next(iter(supernet.mutator.max_widths))
    data = {'channels': dict(supernet.mutator.max_widths)}
    edit(data, group)
    path = tmp_path / 'bad.yaml'
    path.write_text(yaml.safe_dump(data), encoding='utf-8')
    result = _run_tool('get_flops.py', config, '--channel-cfg', path,
                       *SHAPE_ARGS)
    _assert_user_error(result, *needles)
    if 'width 0' in needles:
        assert repr(group) in result.stderr


def test_missing_config_is_a_one_line_error(tmp_path):
    missing = tmp_path / 'absent.py'
    result = _run_tool('get_channel_template.py', missing, '-o',
                       tmp_path / 't.yaml')
    _assert_user_error(result, str(missing), 'no such file')
