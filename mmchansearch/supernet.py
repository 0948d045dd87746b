"""Building a supernet from any config and loading weights into it.

Tools accept both toolbox configs (``model = dict(type='AutoSlim',
architecture=..., mutator=...)``) and plain mmpretrain classifier configs;
the latter are wrapped in a :class:`ChannelSupernet` with a default mutator.
"""
from __future__ import annotations

import copy
import os
from collections.abc import Sequence

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch import nn

from .channel_cfg import ChannelConfig, parse_channel_cfg, same_network
from .checkpoint import (
    architecture_state,
    load_state_strictly,
    read_checkpoint,
    state_dict_of,
)
from .errors import CheckpointMismatchError, ConfigError
from .models.algorithms import DNAS, ChannelSupernet
from .models.algorithms.base import architecture_with_blocks
from .registry import MODELS


def supernet_model_cfg(model_cfg: dict,
                       input_shape: Sequence[int] | None = None,
                       keep_algorithm: bool = False,
                       channel_cfg: ChannelConfig | None = None) -> dict:
    """The supernet config for ``model_cfg``.

    Args:
        model_cfg: ``cfg.model`` of a toolbox or plain mmpretrain config.
        input_shape: overrides the mutator's (C, H, W).
        keep_algorithm: build the config's algorithm (e.g. AutoSlim) rather
            than a plain :class:`ChannelSupernet` of its architecture and
            mutator, which is all analysis and export need.
        channel_cfg: the subnet to be exported: a backbone whose channel
            groups follow a channel_cfg's ``blocks:`` (FBNet DNAS, ReXNet)
            is built from them (:func:`architecture_with_blocks`).

    Returns:
        A config with ``architecture`` and ``mutator`` keys.
    """
    model_cfg = copy.deepcopy(dict(model_cfg))
    if 'architecture' not in model_cfg:
        model_cfg = dict(type='ChannelSupernet', architecture=model_cfg)
    elif not keep_algorithm:
        model_cfg = {k: v for k, v in model_cfg.items()
                     if k in ('architecture', 'mutator', 'data_preprocessor')}
        model_cfg['type'] = 'ChannelSupernet'
    if channel_cfg is not None:
        model_cfg['architecture'] = architecture_with_blocks(
            model_cfg['architecture'], channel_cfg.blocks)
    mutator = dict(model_cfg.get('mutator') or dict(type='ChannelMutator'))
    if input_shape is not None:
        mutator['input_shape'] = tuple(int(s) for s in input_shape)
    model_cfg['mutator'] = mutator
    return model_cfg


def build_supernet(cfg: Config | str,
                   input_shape: Sequence[int] | None = None,
                   keep_algorithm: bool = False,
                   channel_cfg: ChannelConfig | None = None
                   ) -> ChannelSupernet:
    """Builds the supernet of a config file or Config.

    Args:
        cfg: the config (path or object).
        input_shape: overrides the mutator's (C, H, W).
        keep_algorithm: see :func:`supernet_model_cfg`.
        channel_cfg: see :func:`supernet_model_cfg`.
    """
    if not isinstance(cfg, Config):
        if not os.path.isfile(cfg):
            raise ConfigError(f'config {cfg}: no such file.')
        cfg = Config.fromfile(cfg)
    model_cfg = supernet_model_cfg(cfg.model, input_shape, keep_algorithm,
                                   channel_cfg)
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        model = MODELS.build(model_cfg)
    if not isinstance(model, ChannelSupernet):
        raise ConfigError(
            f'model type {model_cfg["type"]!r} is not a channel-search '
            'algorithm; use a classifier config or a toolbox algorithm.')
    return model


def build_search_space(cfg: Config) -> nn.Module:
    """The search algorithm of a config, built without a latency table:
    what ``tools/build_latency_lut.py`` lists the ops of (a DNAS search
    space, else the config's channel supernet)."""
    model_cfg = copy.deepcopy(cfg.model)
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        algorithm = MODELS.get(model_cfg.get('type'))
        if isinstance(algorithm, type) and issubclass(algorithm, DNAS):
            model_cfg.update(latency_table=None, cost_metric='flops',
                             target=None, loss_form='additive')
            return MODELS.build(model_cfg)
    mutator = model_cfg.get('mutator')
    if mutator:
        mutator.pop('latency_table', None)
    cfg = copy.copy(cfg)
    cfg.model = model_cfg
    return build_supernet(cfg)


def load_supernet_state(supernet: ChannelSupernet,
                        state: dict[str, torch.Tensor], source: str,
                        embed: bool = False) -> None:
    """Loads a supernet or plain-classifier state dict into ``supernet``;
    any shape mismatch is a clear error.

    Args:
        supernet: the model to load into.
        state: the state dict.
        source: names the checkpoint in errors.
        embed: the state is the original model's, loaded into a supernet
            the mutator grew (``width_cap`` > 1): its tensors fill the
            leading channels of every layer. Only Network Adjustment's
            pretrained start asks for this; everywhere else a narrower
            tensor is a mismatch, never a partly random layer.
    """
    if embed and supernet.mutator.width_cap <= 1:
        raise ValueError('embed=True needs a supernet grown by width_cap > 1')
    load_state_strictly(supernet.architecture, architecture_state(state),
                        source, embed=embed)


def load_supernet_weights(supernet: ChannelSupernet, checkpoint: str,
                          embed: bool = False) -> None:
    """Loads a supernet or plain-classifier checkpoint into ``supernet``
    (see :func:`load_supernet_state`); a checkpoint that names its
    networks must name the model's (:func:`check_stored_channel_cfgs`)."""
    ckpt = read_checkpoint(checkpoint)
    check_stored_channel_cfgs(supernet, ckpt.get('meta'), checkpoint)
    load_supernet_state(supernet, state_dict_of(ckpt), checkpoint, embed)


def check_stored_channel_cfgs(model: nn.Module, meta: dict | None,
                              source: str) -> None:
    """A subnet checkpoint's meta names the network(s) it holds
    (``channel_cfg`` of a split/exported one, ``channel_cfgs`` of a
    retrained one); a model built with other channel_cfgs is refused.

    Shapes alone cannot tell: a retrained subnet keeps the supernet's full
    tensors, so the wrong widths would load and test without an error.
    """
    given = getattr(model, 'channel_cfgs', None)
    meta = meta or {}
    if not given or not (meta.get('channel_cfgs') or meta.get('channel_cfg')):
        return
    entries = meta.get('channel_cfgs') or [
        dict(name='subnet', channel_cfg=meta['channel_cfg'])]
    stored = [parse_channel_cfg(e['channel_cfg'], f'{source} {e["name"]}')
              for e in entries]
    if len(stored) != len(given) or not all(
            same_network(a, b) for a, b in zip(stored, given)):
        raise CheckpointMismatchError(
            f'checkpoint {source} holds {len(stored)} network(s) of its own '
            f'channel_cfg (meta), not the {len(given)} given in '
            f'model.channel_cfgs ({", ".join(c.source for c in given)}); '
            'give the channel_cfg(s) it was trained with, in order '
            '(tools/export_subnet.py reads them from the checkpoint).')
