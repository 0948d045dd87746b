"""The channel_cfg schema: parsing, validation and YAML round trips."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from torch import nn

from mmchansearch.channel_cfg import (
    ChannelConfig,
    dump_channel_cfg,
    load_channel_cfg,
    parse_channel_cfg,
    save_channel_cfg,
    validate_channels,
)
from mmchansearch.errors import ChannelConfigError
from mmchansearch.mutator import ChannelMutator

MAX_WIDTHS = {'backbone.conv1': 64, 'backbone.layer1.0.conv1': 32}


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path = tmp_path / 'channels.yaml'
        path.write_text(text, encoding='utf-8')
        return path

    return write


# ------------------------------------------------------------- structure
@pytest.mark.parametrize('text, message', [
    pytest.param('channels:\n  a: [1, 2\n', 'not valid YAML',
                 id='malformed-yaml'),
    pytest.param('- a\n- b\n', 'expected a mapping.*got list',
                 id='top-level-list'),
    pytest.param('', 'expected a mapping', id='empty-file'),
    pytest.param('channels: {a: 1}\nchanels: {a: 2}\n',
                 r"unknown top-level key\(s\) \['chanels'\]",
                 id='unknown-top-level-key'),
    pytest.param('meta: {model: x.py}\n', '`channels` must be a non-empty',
                 id='no-channels'),
    pytest.param('channels: [1, 2]\n', '`channels` must be a non-empty',
                 id='channels-list'),
    pytest.param('channels: {}\n', '`channels` must be a non-empty',
                 id='channels-empty'),
    pytest.param('meta: 3\nchannels: {a: 1}\n', '`meta` must be a mapping',
                 id='meta-not-mapping'),
    pytest.param('channels: {a: 1}\nblocks: [k3]\n',
                 '`blocks` must be a mapping', id='blocks-not-mapping'),
    pytest.param('channels: {a: 1}\nresolution: -224\n',
                 '`resolution` must be a positive integer, got -224',
                 id='negative-resolution'),
    pytest.param('channels: {a: 1}\nresolution: 0\n',
                 '`resolution` must be a positive integer, got 0',
                 id='zero-resolution'),
    pytest.param('channels: {a: 1}\nresolution: 224.5\n',
                 '`resolution` must be a positive integer, got 224.5',
                 id='float-resolution'),
    pytest.param('channels: {a: 1}\nresolution: true\n',
                 '`resolution` must be a positive integer, got True',
                 id='bool-resolution'),
])
def test_load_rejects_bad_structure(text, message, write_yaml):
    path = write_yaml(text)
    with pytest.raises(ChannelConfigError, match=message) as info:
        load_channel_cfg(path)
    assert str(path) in str(info.value)


def test_load_missing_file(tmp_path):
    with pytest.raises(ChannelConfigError, match='no such file'):
        load_channel_cfg(tmp_path / 'absent.yaml')


def test_yaml_error_is_one_line(write_yaml):
    with pytest.raises(ChannelConfigError) as info:
        load_channel_cfg(write_yaml('channels:\n  a: 1\n   b: 2\n'))
    assert '\n' not in str(info.value)


def test_parse_keeps_sections():
    cfg = parse_channel_cfg({'channels': {'a': 3}, 'meta': None,
                             'blocks': {'layers.3': 'k5_e6'},
                             'resolution': 192}, 'here')
    assert cfg.channels == {'a': 3}
    assert cfg.meta == {}
    assert cfg.blocks == {'layers.3': 'k5_e6'}
    assert cfg.resolution == 192
    assert cfg.source == 'here'
    assert parse_channel_cfg(cfg) is cfg


def test_to_dict_omits_empty_sections():
    assert ChannelConfig({'a': 1}).to_dict() == {'channels': {'a': 1}}


# ------------------------------------------------------------ validation
@pytest.mark.parametrize('channels, message', [
    pytest.param({**MAX_WIDTHS, 'backbone.conv2': 3},
                 "unknown group 'backbone.conv2'.*did you mean backbone.conv1",
                 id='unknown-group'),
    pytest.param({'backbone.conv1': 64},
                 "group 'backbone.layer1.0.conv1' is missing.*1..32",
                 id='missing-group'),
    pytest.param({**MAX_WIDTHS, 'backbone.conv1': 16.0},
                 r"'backbone.conv1' has width 16.0 \(float\).*1\.\.64",
                 id='float-width'),
    pytest.param({**MAX_WIDTHS, 'backbone.conv1': True},
                 r"'backbone.conv1' has width True \(bool\)", id='bool-width'),
    pytest.param({**MAX_WIDTHS, 'backbone.conv1': '16'},
                 r"'backbone.conv1' has width '16' \(str\)", id='str-width'),
    pytest.param({**MAX_WIDTHS, 'backbone.conv1': None},
                 r"'backbone.conv1' has width None", id='null-width'),
    pytest.param({**MAX_WIDTHS, 'backbone.conv1': 0},
                 r"'backbone.conv1' has width 0, outside the valid range "
                 r'1\.\.64', id='zero-width'),
    pytest.param({**MAX_WIDTHS, 'backbone.layer1.0.conv1': 33},
                 r"'backbone.layer1.0.conv1' has width 33, outside the valid "
                 r'range 1\.\.32', id='above-max'),
    pytest.param({**MAX_WIDTHS, 'backbone.conv1': -8},
                 r'width -8, outside the valid range 1\.\.64',
                 id='negative-width'),
])
def test_validate_rejects_bad_widths(channels, message):
    cfg = ChannelConfig(channels, source='subnet.yaml')
    with pytest.raises(ChannelConfigError, match=message) as info:
        validate_channels(cfg, MAX_WIDTHS)
    assert 'subnet.yaml' in str(info.value)


def test_validate_accepts_range_ends():
    validate_channels(ChannelConfig(dict(MAX_WIDTHS)), MAX_WIDTHS)
    validate_channels(ChannelConfig({g: 1 for g in MAX_WIDTHS}), MAX_WIDTHS)


def test_loaded_file_error_names_the_file(write_yaml):
    path = write_yaml('channels:\n  backbone.conv1: 64\n'
                      '  backbone.layer1.0.conv1: 40\n')
    with pytest.raises(ChannelConfigError,
                       match=f"{path}.*'backbone.layer1.0.conv1'.*1..32"):
        validate_channels(load_channel_cfg(path), MAX_WIDTHS)


# ------------------------------------------------------------- round trip
def test_save_load_round_trip(tmp_path):
    cfg = ChannelConfig(
        {'backbone.conv1': 24, 'backbone.layer1.0.conv1': 7},
        meta={'model': 'configs/x.py', 'flops': 305.1e6,
              'input_shape': [3, 224, 224], 'note': 'a: b # c'},
        blocks={'backbone.layers.3': 'k5_e6'}, resolution=192)
    path = tmp_path / 'out' / 'subnet.yaml'
    save_channel_cfg(cfg, path, MAX_WIDTHS)
    loaded = load_channel_cfg(path)
    assert loaded.to_dict() == cfg.to_dict()
    assert list(loaded.channels) == list(cfg.channels)
    assert loaded.source == str(path)
    validate_channels(loaded, MAX_WIDTHS)


def test_dump_comments_every_group_with_its_max():
    text = dump_channel_cfg(ChannelConfig({'backbone.conv1': 24,
                                           'backbone.layer1.0.conv1': 7}),
                            MAX_WIDTHS)
    assert '  backbone.conv1: 24  # max 64\n' in text
    assert '  backbone.layer1.0.conv1: 7  # max 32\n' in text
    assert yaml.safe_load(text) == {'channels': {
        'backbone.conv1': 24, 'backbone.layer1.0.conv1': 7}}


def test_dump_without_max_widths_has_no_comments():
    text = dump_channel_cfg(ChannelConfig({'a': 3}))
    assert '#' not in text
    assert yaml.safe_load(text) == {'channels': {'a': 3}}


def test_round_trip_of_sequential_model_groups(tmp_path):
    """Groups of an nn.Sequential are named '0', '3.0', '4.1'.

    YAML must keep those names strings, or a saved template cannot be loaded
    back into its own model.
    """
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Sequential(nn.Conv2d(8, 8, 3), nn.ReLU()),
        nn.Sequential(nn.ReLU(), nn.Conv2d(8, 6, 1)),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))
    mutator = ChannelMutator(input_shape=(3, 16, 16))
    mutator.prepare(model)
    assert list(mutator.max_widths) == ['0', '3.0', '4.1']
    path = tmp_path / 'template.yaml'
    save_channel_cfg(ChannelConfig(mutator.current_choices()), path,
                     mutator.max_widths)
    loaded = load_channel_cfg(path)
    assert loaded.channels == mutator.max_widths
    mutator.set_choices(loaded)
