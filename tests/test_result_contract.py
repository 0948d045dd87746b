"""One result contract: every search's result is a channel_cfg that the
method's retrain config takes as ``model.channel_cfgs``.

ReXNet's result (block widths under ``blocks:``) and DNAS's (block names
under ``blocks:``) build, through that key, the network the old keys built
(``model.backbone.block_channels``, ``model.backbone.blocks``), which is
checked here against the plain classifier with those arguments: same
parameter names and shapes, same outputs, also after export. The old keys
and the old ReXNet ``best.yaml`` still work, with one warning.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmchansearch.channel_cfg import ChannelConfig, save_channel_cfg
from mmchansearch.engine.rexnet_search import ReXNetBudget
from mmchansearch.export import static_model_from_checkpoint
from mmchansearch.models.backbones.rexnet import block_names
from mmchansearch.mutator import ChannelMutator
from mmchansearch.registry import MODELS

CONFIGS = Path(__file__).resolve().parents[1] / 'configs'
REXNET = CONFIGS / 'rexnet' / 'rexnet_retrain_1xb64_fashion-mnist.py'
DNAS = CONFIGS / 'dnas' / 'dnas_fbnet-small_retrain_1xb64_fashion-mnist.py'
WIDTHS = [8, 16, 16, 24, 32, 32, 40, 48]  # the 8 blocks of REXNET
SHAPE = (3, 32, 32)


@pytest.fixture(autouse=True)
def scope():
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        yield


def _retrain(config: Path, **options) -> torch.nn.Module:
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options)
    return MODELS.build(cfg.model).eval()


def _same_network(static: torch.nn.Module, plain: torch.nn.Module) -> None:
    """Same parameter names and shapes; with ``plain``'s weights loaded,
    the same outputs."""
    assert {k: v.shape for k, v in static.state_dict().items()} == \
        {k: v.shape for k, v in plain.state_dict().items()}
    static.load_state_dict(plain.state_dict())
    x = torch.randn(2, *SHAPE)
    with torch.no_grad():
        assert torch.allclose(static(x, mode='tensor'),
                              plain(x, mode='tensor'), atol=1e-5)


def _checkpoint(model, path: Path) -> Path:
    """A checkpoint as tools/train.py writes it (ChannelCfgMetaHook)."""
    torch.save(dict(state_dict=model.state_dict(), meta=dict(
        input_shape=list(SHAPE), channel_cfgs=[
            dict(name=n, channel_cfg=c.to_dict()) for n, c in zip(
                model.subnet_names, model.channel_cfgs)])), path)
    return path


# ------------------------------------------------------------------ ReXNet
def _rexnet_plain() -> torch.nn.Module:
    """The old path: model.backbone.block_channels on the classifier."""
    arch = Config.fromfile(REXNET).model.architecture.to_dict()
    arch['backbone']['block_channels'] = WIDTHS
    return MODELS.build(arch).eval()


def _rexnet_result(tmp_path: Path) -> Path:
    """best.yaml as ReXNetSearchLoop writes it: the widths under blocks:,
    the groups of that network at full width under channels:."""
    arch = Config.fromfile(REXNET).model.architecture.to_dict()
    names = block_names(arch['backbone']['stage_blocks'])
    path = tmp_path / 'best.yaml'
    save_channel_cfg(ChannelConfig(
        ReXNetBudget(arch, SHAPE).channel_groups(WIDTHS),
        dict(input_shape=list(SHAPE)),
        {f'backbone.{n}': w for n, w in zip(names, WIDTHS)}), path)
    return path


def test_rexnet_result_retrains_and_exports_as_block_channels(tmp_path):
    best = _rexnet_result(tmp_path)
    model = _retrain(REXNET, **{'model.channel_cfgs': str(best)})
    plain = _rexnet_plain()
    _same_network(model.architecture, plain)
    # export of the retrained checkpoint: the network as trained
    cfg = Config.fromfile(REXNET)  # no channel_cfgs: the checkpoint's
    static, stored, _ = static_model_from_checkpoint(
        cfg, str(_checkpoint(model, tmp_path / 'epoch_1.pth')))
    assert stored.blocks == yaml.safe_load(best.read_text())['blocks']
    x = torch.randn(2, *SHAPE)
    with torch.no_grad():
        assert torch.allclose(static(x, mode='tensor'),
                              plain(x, mode='tensor'), atol=1e-5)


def test_old_rexnet_best_yaml_and_key_still_work(tmp_path, warnings):
    old = tmp_path / 'old_best.yaml'
    old.write_text(yaml.safe_dump(dict(
        model='m', stage_blocks=[1, 1, 1, 2, 1, 2], block_channels=WIDTHS,
        flops=1.0, cfg_options='model.backbone.block_channels=[...]')))
    from_file = _retrain(REXNET, **{'model.channel_cfgs': str(old)})
    assert len(warnings) == 1 and 'block_channels format' in \
        warnings[0].getMessage()
    _same_network(from_file.architecture, _rexnet_plain())
    from_key = _retrain(REXNET, **{'model.backbone.block_channels': WIDTHS})
    assert len(warnings) == 2 and 'model.backbone.block_channels is ' \
        'deprecated' in warnings[1].getMessage()
    _same_network(from_key.architecture, _rexnet_plain())


# -------------------------------------------------------------------- DNAS
BLOCKS = {f'backbone.layers.{i}': b for i, b in enumerate(
    ['k3_e1', 'k5_e3', 'skip', 'k3_e6', 'k5_e1_g2', 'k3_e3', 'k5_e6'])}


def _dnas_plain(blocks) -> torch.nn.Module:
    """The old path: model.backbone.blocks on the classifier."""
    arch = Config.fromfile(DNAS).model.architecture.to_dict()
    arch['backbone']['blocks'] = blocks
    return MODELS.build(arch).eval()


def _dnas_result(tmp_path: Path, with_channels: bool = True) -> Path:
    """derived.yaml as DNASSearchLoop writes it (blocks:, and the derived
    network's groups at full width under channels:)."""
    channels = {}
    if with_channels:
        mutator = ChannelMutator(input_shape=SHAPE)
        mutator.prepare(_dnas_plain(BLOCKS))
        channels = mutator.max_widths
    path = tmp_path / 'derived.yaml'
    save_channel_cfg(ChannelConfig(channels, blocks=BLOCKS), path)
    return path


@pytest.mark.parametrize('with_channels', [True, False])
def test_dnas_result_retrains_and_exports_as_blocks(tmp_path,
                                                    with_channels):
    derived = _dnas_result(tmp_path, with_channels)
    model = _retrain(DNAS, **{'model.channel_cfgs': str(derived)})
    plain = _dnas_plain(str(derived))
    _same_network(model.architecture, plain)
    static, _, _ = static_model_from_checkpoint(
        Config.fromfile(DNAS),
        str(_checkpoint(model, tmp_path / 'epoch_1.pth')))
    x = torch.randn(2, *SHAPE)
    with torch.no_grad():
        assert torch.allclose(static(x, mode='tensor'),
                              plain(x, mode='tensor'), atol=1e-5)


def test_old_dnas_key_still_works(tmp_path, warnings):
    derived = _dnas_result(tmp_path)
    model = _retrain(DNAS, **{'model.backbone.blocks': str(derived)})
    assert len(warnings) == 1 and 'model.backbone.blocks is deprecated' \
        in warnings[0].getMessage()
    _same_network(model.architecture, _dnas_plain(BLOCKS))
