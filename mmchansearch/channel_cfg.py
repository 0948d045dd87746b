"""The channel_cfg YAML schema: load, validate, save, template.

Every tool reads and writes this one format::

    meta:        # written by tools; only checked, never applied
      model: configs/...py
      flops: 305.1e6
    channels:    # group name -> output channels kept (int, 1..max)
      backbone.conv1.conv: 24
    blocks:      # optional, block-choice spaces: layer -> candidate name
      backbone.layers.3: k5_e6
    resolution: 192   # optional, input resolution
"""
from __future__ import annotations

import dataclasses
import difflib
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from mmengine.logging import MMLogger

from .errors import ChannelConfigError
from .fileio import atomic_write_text

TOP_LEVEL_KEYS = ('meta', 'channels', 'blocks', 'resolution')
TEMPLATE_HINT = ('`python tools/get_channel_template.py CONFIG -o FILE` '
                 'writes a valid template')


@dataclass
class ChannelConfig:
    """One network of a search space, as stored in a channel_cfg file.

    Attributes:
        channels: group name -> width.
        meta: free-form information written by tools.
        blocks: layer name -> block candidate name (block-choice spaces).
        resolution: input resolution, when it was searched.
        source: where the config came from, used in error messages.
    """
    channels: dict[str, int]
    meta: dict[str, Any] = field(default_factory=dict)
    blocks: dict[str, str] = field(default_factory=dict)
    resolution: int | None = None
    source: str = '<dict>'

    def with_full_widths(self, max_widths: Mapping[str, int]
                         ) -> ChannelConfig:
        """This config, or for one with ``blocks:`` but no ``channels:``
        (e.g. a DNAS result) a copy with every group at its max width."""
        if self.channels:
            return self
        return dataclasses.replace(self, channels=dict(max_widths))

    def to_dict(self) -> dict[str, Any]:
        """The YAML-ready mapping, omitting empty optional sections."""
        data: dict[str, Any] = {}
        if self.meta:
            data['meta'] = dict(self.meta)
        data['channels'] = dict(self.channels)
        if self.blocks:
            data['blocks'] = dict(self.blocks)
        if self.resolution is not None:
            data['resolution'] = self.resolution
        return data


def parse_channel_cfg(data: Any, source: str = '<dict>') -> ChannelConfig:
    """Checks the structure of a loaded mapping and wraps it.

    Args:
        data: the mapping read from YAML (or built in Python).
        source: file name or description used in error messages.

    Returns:
        The config. Widths are checked against a model by
        :func:`validate_channels`.
    """
    if isinstance(data, ChannelConfig):
        return data
    if isinstance(data, Mapping) and 'block_channels' in data and not (
            {'channels', 'blocks'} & set(data)):
        data = _from_rexnet_best(data, source)
    if not isinstance(data, Mapping):
        raise ChannelConfigError(
            f'channel_cfg {source}: expected a mapping with keys '
            f'{", ".join(TOP_LEVEL_KEYS)}, got {type(data).__name__}; '
            f'{TEMPLATE_HINT}.')
    unknown = sorted(set(map(str, data)) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise ChannelConfigError(
            f'channel_cfg {source}: unknown top-level key(s) {unknown}; '
            f'valid keys are {", ".join(TOP_LEVEL_KEYS)}.')
    blocks = data.get('blocks') or {}
    channels = data.get('channels') or ({} if blocks else None)
    if not isinstance(channels, Mapping) or not (channels or blocks):
        raise ChannelConfigError(
            f'channel_cfg {source}: `channels` must be a non-empty mapping '
            f'of group name -> width (it may be left out only when `blocks` '
            f'is given); {TEMPLATE_HINT}.')
    meta = data.get('meta') or {}
    for key, value in (('meta', meta), ('blocks', blocks)):
        if not isinstance(value, Mapping):
            raise ChannelConfigError(
                f'channel_cfg {source}: `{key}` must be a mapping, got '
                f'{type(value).__name__}.')
    resolution = data.get('resolution')
    if resolution is not None and (not _is_int(resolution) or resolution < 1):
        raise ChannelConfigError(
            f'channel_cfg {source}: `resolution` must be a positive integer, '
            f'got {resolution!r}.')
    return ChannelConfig(dict(channels), dict(meta), dict(blocks), resolution,
                         source)


def _from_rexnet_best(data: Mapping, source: str) -> dict:
    """An old ReXNet ``best.yaml`` (``block_channels`` and ``stage_blocks``
    at the top level) as a channel_cfg: every block's width under
    ``blocks:`` (``backbone.stages.<s>.<j>``, the backbone's module
    names), the rest as meta. Logs one deprecation warning."""
    MMLogger.get_current_instance().warning(
        f'channel_cfg {source}: the block_channels format of an old ReXNet '
        'best.yaml is deprecated; it is read as blocks: (block -> width). '
        'A ReXNet search now writes a channel_cfg.')
    stage_blocks = data.get('stage_blocks')
    widths = list(data['block_channels'] or [])
    if not stage_blocks or sum(stage_blocks) != len(widths):
        raise ChannelConfigError(
            f'channel_cfg {source}: an old ReXNet best.yaml needs '
            '`stage_blocks` whose sum is the number of `block_channels`; '
            'rerun the search (it writes a channel_cfg).')
    names = [f'backbone.stages.{s}.{j}' for s, n in enumerate(stage_blocks)
             for j in range(n)]
    meta = {k: v for k, v in data.items()
            if k not in ('block_channels', 'cfg_options')}
    return dict(meta=meta, blocks=dict(zip(names, widths)))


def load_channel_cfg(path: str | os.PathLike) -> ChannelConfig:
    """Reads and structurally checks a channel_cfg YAML file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ChannelConfigError(f'channel_cfg {path}: no such file.')
    with open(path, encoding='utf-8') as f:
        text = f.read()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ChannelConfigError(
            f'channel_cfg {path}: not valid YAML ({_one_line(err)}); fix the '
            f'syntax, or {TEMPLATE_HINT}.') from None
    return parse_channel_cfg(data, path)


def same_network(a: ChannelConfig, b: ChannelConfig) -> bool:
    """Whether two configs describe the same network (meta aside)."""
    return (a.channels, a.blocks, a.resolution) == \
        (b.channels, b.blocks, b.resolution)


def read_channel_cfg(item: str | os.PathLike | Mapping | ChannelConfig
                     ) -> ChannelConfig:
    """A channel_cfg from a YAML path, a mapping or a ChannelConfig."""
    if isinstance(item, (str, os.PathLike)):
        return load_channel_cfg(item)
    return parse_channel_cfg(item)


def choices_by_layer(blocks: Mapping[str, Any], layers: Sequence[str],
                     source: str, owner: str = 'this space',
                     allowed: Sequence[str] | None = None
                     ) -> dict[str, Any]:
    """A ``blocks:`` mapping checked against a backbone's layers.

    Args:
        blocks: layer -> choice; names with or without the ``backbone.``
            prefix of a channel_cfg.
        layers: the backbone's layer names, in order.
        source: the file or argument named in error messages.
        owner: how the messages name the backbone.
        allowed: the valid choices (block names); None: any.

    Returns:
        Layer (without prefix) -> choice, for every layer.

    Raises:
        ChannelConfigError: an unknown layer or choice, or a layer without
            a choice.
    """
    chosen = {}
    for key, choice in blocks.items():
        layer = str(key).removeprefix('backbone.')
        if layer not in layers:
            close = difflib.get_close_matches(layer, list(layers), 1)
            hint = f' (did you mean {close[0]}?)' if close else ''
            raise ChannelConfigError(
                f'{source}: unknown layer {key!r}{hint}; {owner} has '
                f'{layers[0]} .. {layers[-1]}.')
        if allowed is not None and choice not in allowed:
            raise ChannelConfigError(
                f'{source}: layer {key!r} has unknown block {choice!r}; '
                f'valid blocks are {", ".join(allowed)}.')
        chosen[layer] = choice
    missing = [layer for layer in layers if layer not in chosen]
    if missing:
        raise ChannelConfigError(
            f'{source}: no block for {missing[0]} ({len(missing)} layers '
            'missing); every layer needs one.')
    return chosen


def validate_channels(cfg: ChannelConfig, max_widths: Mapping[str, int],
                      divisors: Mapping[str, int] | None = None) -> None:
    """Checks that ``cfg`` sets every group of a model to a valid width.

    Args:
        cfg: the config to check.
        max_widths: the model's group name -> max width.
        divisors: group name -> required multiple (grouped convs).

    Raises:
        ChannelConfigError: naming the first unknown group, missing group,
            non-integer or out-of-range width.
    """
    for name in cfg.channels:
        if name not in max_widths:
            close = difflib.get_close_matches(str(name), list(max_widths), 3)
            hint = f'did you mean {", ".join(close)}? ' if close else ''
            raise ChannelConfigError(
                f'channel_cfg {cfg.source}: unknown group {name!r}; {hint}'
                f'this model has {len(max_widths)} groups '
                f'({_preview(max_widths)}). Is the file for another model? '
                f'{TEMPLATE_HINT}.')
    missing = [name for name in max_widths if name not in cfg.channels]
    if missing:
        raise ChannelConfigError(
            f'channel_cfg {cfg.source}: group {missing[0]!r} is missing '
            f'({len(missing)} missing in all); give it a width in '
            f'1..{max_widths[missing[0]]}.')
    for name, width in cfg.channels.items():
        top = max_widths[name]
        if not _is_int(width):
            raise ChannelConfigError(
                f'channel_cfg {cfg.source}: group {name!r} has width '
                f'{width!r} ({type(width).__name__}); widths must be '
                f'integers in 1..{top}.')
        if not 1 <= width <= top:
            raise ChannelConfigError(
                f'channel_cfg {cfg.source}: group {name!r} has width {width}, '
                f'outside the valid range 1..{top}.')
        multiple = (divisors or {}).get(name, 1)
        if width % multiple:
            raise ChannelConfigError(
                f'channel_cfg {cfg.source}: group {name!r} has width {width}, '
                f'but a grouped conv needs a multiple of {multiple} (e.g. '
                f'{max(multiple, width // multiple * multiple)}).')


def dump_channel_cfg(cfg: ChannelConfig,
                     max_widths: Mapping[str, int] | None = None) -> str:
    """YAML text of ``cfg``; with ``max_widths``, each width gets a comment."""
    data = cfg.to_dict()
    channels = data.pop('channels')
    blocks = data.pop('blocks', None)
    resolution = data.pop('resolution', None)
    out = io.StringIO()
    if data.get('meta'):
        out.write(yaml.safe_dump({'meta': data['meta']}, sort_keys=False,
                                 default_flow_style=None))
    out.write('channels:\n')
    for name, width in channels.items():
        comment = f'  # max {max_widths[name]}' if max_widths else ''
        out.write(f'  {_yaml_key(name)}: {width}{comment}\n')
    if blocks:
        out.write(yaml.safe_dump({'blocks': blocks}, sort_keys=False))
    if resolution is not None:
        out.write(f'resolution: {resolution}\n')
    return out.getvalue()


def save_channel_cfg(cfg: ChannelConfig, path: str | os.PathLike,
                     max_widths: Mapping[str, int] | None = None) -> None:
    """Writes ``cfg`` to ``path`` atomically (see :func:`dump_channel_cfg`)."""
    atomic_write_text(path, dump_channel_cfg(cfg, max_widths))


def _yaml_key(name: str) -> str:
    """``name`` as a YAML key that reads back as the same string."""
    plain = str(name)
    try:
        if yaml.safe_load(f'{plain}: 0') == {name: 0}:
            return plain
    except yaml.YAMLError:
        pass
    return json.dumps(plain)  # a double-quoted YAML scalar


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _preview(names: Mapping[str, int], limit: int = 4) -> str:
    shown = list(names)[:limit]
    more = f', ... {len(names) - limit} more' if len(names) > limit else ''
    return ', '.join(shown) + more


def _one_line(err: Exception) -> str:
    return ' '.join(str(err).split())
