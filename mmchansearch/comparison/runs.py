"""Derived configs of a comparison's methods."""
from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence

from mmengine.config import Config

from ..errors import ConfigError
from ..fileio import atomic_write_text


def _set_data_root(node, data_root: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'data_root':
                node[key] = data_root
            else:
                _set_data_root(value, data_root)
    elif isinstance(node, list):
        for item in node:
            _set_data_root(item, data_root)


def derive_config(source: str, overrides: Sequence[Mapping | None],
                  out: str, data_root: str | None = None) -> str:
    """Writes ``source`` with each of ``overrides`` merged in turn (nested
    dicts; ``_delete_=True`` replaces instead of merging) and every
    dataset's ``data_root`` replaced, to ``out``; returns ``out``."""
    if not os.path.isfile(source):
        raise ConfigError(f'compare config names {source}: no such file.')
    cfg = Config.fromfile(source)
    for item in overrides:
        if item:
            cfg.merge_from_dict(copy.deepcopy(dict(item)))
    resolved = cfg.to_dict()  # without the inherited file bookkeeping
    if data_root:
        _set_data_root(resolved, data_root)
    os.makedirs(os.path.dirname(out) or '.', exist_ok=True)
    atomic_write_text(out, Config(resolved).pretty_text)
    return out

