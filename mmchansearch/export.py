"""Export of a searched subnet: static model, checkpoint and ONNX."""
from __future__ import annotations

import copy
import os
from collections.abc import Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch import nn

from .analysis import LogitsModule
from .channel_cfg import ChannelConfig, parse_channel_cfg, same_network
from .checkpoint import (
    architecture_state,
    load_state_strictly,
    read_checkpoint,
    state_dict_of,
)
from .errors import CheckpointMismatchError
from .fileio import atomic_torch_save
from .models.algorithms import ChannelSupernet
from .models.backbones.fbnetv2 import keep_chosen_blocks
from .mutator import ChannelMutator
from .registry import MODELS
from .supernet import (
    build_supernet,
    load_supernet_state,
    supernet_model_cfg,
)
from .version import __version__


def export_subnet(supernet: ChannelSupernet,
                  channel_cfg: ChannelConfig) -> nn.Module:
    """A physically smaller static classifier for ``channel_cfg``.

    In an FBNetV2 space (``FBNetV2SearchSpace`` backbone) the static
    network keeps only the kernels the channel_cfg's ``blocks:`` names.
    The supernet is left at the widths of ``channel_cfg``; one with
    ``blocks:`` but no ``channels:`` keeps every group at its full width.
    """
    channel_cfg = channel_cfg.with_full_widths(supernet.mutator.max_widths)
    supernet.mutator.set_choices(channel_cfg)
    static = supernet.mutator.export_static().eval()
    keep_chosen_blocks(static, channel_cfg.blocks)
    return static


def static_usage(static: nn.Module, input_shape: Sequence[int]
                 ) -> dict[str, float]:
    """FLOPs and params of a static network at ``input_shape`` (C, H, W),
    by the analytic estimator on a copy of it."""
    mutator = ChannelMutator(input_shape=tuple(input_shape))
    mutator.prepare(copy.deepcopy(static))
    return mutator.estimate(mutator.max_widths)


def save_static_checkpoint(static: nn.Module, channel_cfg: ChannelConfig,
                           input_shape: Sequence[int], path: str) -> None:
    """Writes the static model's weights with the channel_cfg in ``meta``
    (and the input shape; at the channel_cfg's ``resolution`` if set)."""
    if channel_cfg.resolution:
        input_shape = (input_shape[0], channel_cfg.resolution,
                       channel_cfg.resolution)
    meta = dict(channel_cfg=channel_cfg.to_dict(),
                input_shape=list(input_shape),
                mmchansearch_version=__version__)
    atomic_torch_save(dict(meta=meta, state_dict=static.state_dict()), path)


def load_static_model(cfg: Config | str, checkpoint: str) -> nn.Module:
    """Rebuilds an exported static model from its config and checkpoint.

    The checkpoint's ``meta`` holds the channel_cfg, so no supernet weights
    are needed.
    """
    ckpt = read_checkpoint(checkpoint)
    meta = ckpt.get('meta') or {}
    if 'channel_cfg' not in meta:
        raise CheckpointMismatchError(
            f'checkpoint {checkpoint} has no channel_cfg in its meta; it is '
            'not a static subnet checkpoint. Write one with '
            'tools/export_subnet.py or tools/model_converters/'
            'split_checkpoint.py.')
    channel_cfg = parse_channel_cfg(meta['channel_cfg'], checkpoint)
    supernet = build_supernet(cfg, meta.get('input_shape'),
                              channel_cfg=channel_cfg)
    static = export_subnet(supernet, channel_cfg)
    load_state_strictly(static, state_dict_of(ckpt), checkpoint)
    return static


def static_model_from_checkpoint(
        cfg: Config, checkpoint: str,
        channel_cfg: ChannelConfig | None = None,
        subnet: str | None = None,
        input_shape: Sequence[int] | None = None,
        strict_meta: bool = False
) -> tuple[nn.Module, ChannelConfig, ChannelSupernet]:
    """The static subnet held by any checkpoint the pipelines write.

    Kinds of checkpoint, told apart by their ``meta``:

    - a static subnet (``tools/model_converters/split_checkpoint.py``,
      ``tools/export_subnet.py``): ``meta['channel_cfg']``;
    - a retrained subnet or a joint retraining (``tools/train.py`` with a
      ``SlimmableNetwork`` config): ``meta['channel_cfgs']``, one per
      subnet; a joint checkpoint needs ``subnet`` (a name or an index);
    - a supernet: ``channel_cfg`` must be given;
    - a plain model (a config without ``architecture``, e.g. a retrained
      ReXNet): the network as trained, or ``channel_cfg``'s subnet of it.

    A ``channel_cfg`` given for a checkpoint that names its own must be the
    same network.

    Args:
        cfg: a config of the same architecture (the supernet, search or
            subnet config of the run).
        checkpoint: the checkpoint path.
        channel_cfg: the subnet's widths (needed for supernet/plain
            checkpoints).
        subnet: which subnet of a joint checkpoint.
        input_shape: overrides the (C, H, W) the model is traced at.
        strict_meta: a given channel_cfg whose meta disagrees with the
            model is an error (else a warning).

    Returns:
        The static model (eval mode, weights loaded), its channel_cfg, and
        the supernet it was exported from (at the subnet's widths).
    """
    ckpt = read_checkpoint(checkpoint)
    meta = ckpt.get('meta') or {}
    state = state_dict_of(ckpt)
    input_shape = input_shape or meta.get('input_shape')
    stored, joint = _stored_channel_cfgs(meta, checkpoint, subnet)
    if stored is None:
        plain = 'architecture' not in cfg.model
        if channel_cfg is None and not plain:
            raise CheckpointMismatchError(
                f'checkpoint {checkpoint} holds no channel_cfg in its meta '
                '(a supernet checkpoint); give the subnet\'s --channel-cfg.')
        supernet = build_supernet(cfg, input_shape, channel_cfg=channel_cfg)
        supernet.mutator.strict_meta = strict_meta
        load_supernet_state(supernet, state, checkpoint)
        if channel_cfg is None:  # a plain network (e.g. a retrained ReXNet)
            channel_cfg = ChannelConfig(dict(supernet.mutator.max_widths),
                                        source=f'{checkpoint} (as trained)')
        return export_subnet(supernet, channel_cfg), channel_cfg, supernet
    if channel_cfg is not None and not same_network(channel_cfg, stored):
        raise CheckpointMismatchError(
            f'checkpoint {checkpoint} holds the network of its own '
            f'channel_cfg ({stored.source}), not {channel_cfg.source}; drop '
            '--channel-cfg (the checkpoint\'s is used) or give the matching '
            'checkpoint.')
    if joint is not None:
        model = _joint_model(cfg, joint, input_shape)
        load_supernet_state(model, state, checkpoint)
        model.activate(joint.index(stored))
        return model.mutator.export_static().eval(), stored, model
    supernet = build_supernet(cfg, input_shape, channel_cfg=stored)
    static = export_subnet(supernet, stored)
    load_state_strictly(static, architecture_state(state), checkpoint)
    return static, stored, supernet


def _stored_channel_cfgs(meta: dict, checkpoint: str, subnet: str | None
                         ) -> tuple[ChannelConfig | None,
                                    list[ChannelConfig] | None]:
    """(the subnet's channel_cfg, all of a joint checkpoint's or None)."""
    if 'channel_cfg' in meta:
        return parse_channel_cfg(meta['channel_cfg'], checkpoint), None
    entries = meta.get('channel_cfgs')
    if not entries:
        return None, None
    cfgs = [parse_channel_cfg(e['channel_cfg'], f'{checkpoint} '
                              f'subnet {e["name"]}') for e in entries]
    names = [e['name'] for e in entries]
    if len(cfgs) == 1:
        return cfgs[0], None
    if subnet is None:
        raise CheckpointMismatchError(
            f'checkpoint {checkpoint} holds {len(cfgs)} jointly trained '
            f'subnets ({", ".join(names)}); choose one with --subnet NAME, '
            'or split it with tools/model_converters/split_checkpoint.py.')
    if subnet in names:
        return cfgs[names.index(subnet)], cfgs
    if subnet.isdigit() and int(subnet) < len(cfgs):
        return cfgs[int(subnet)], cfgs
    raise CheckpointMismatchError(
        f'checkpoint {checkpoint} has no subnet {subnet!r}; it has '
        f'{", ".join(names)} (or an index 0..{len(cfgs) - 1}).')


def _joint_model(cfg: Config, channel_cfgs: list[ChannelConfig],
                 input_shape: Sequence[int] | None) -> ChannelSupernet:
    """The SlimmableNetwork of a joint checkpoint (switchable BN)."""
    model_cfg = supernet_model_cfg(cfg.model, input_shape)
    model_cfg.update(type='SlimmableNetwork',
                     channel_cfgs=[c.to_dict() for c in channel_cfgs])
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        return MODELS.build(model_cfg).eval()


def onnx_latency(path: str, input_shape: Sequence[int],
                 batch_size: int = 1, warmup: int = 10,
                 repeats: int = 50) -> float:
    """Median onnxruntime latency of one forward (ms) on the CPU."""
    import time

    import onnxruntime
    session = onnxruntime.InferenceSession(
        path, providers=['CPUExecutionProvider'])
    feed = {'input': np.random.default_rng(0).standard_normal(
        (batch_size, *input_shape)).astype(np.float32)}
    for _ in range(warmup):
        session.run(None, feed)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def export_onnx(static: nn.Module, input_shape: Sequence[int],
                path: str) -> float:
    """Writes ONNX and checks it in onnxruntime.

    Returns:
        The largest absolute difference between onnxruntime's and torch's
        logits on a random batch.
    """
    import onnxruntime

    model = LogitsModule(static).eval()
    sample = torch.randn(2, *input_shape)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.onnx.export(model, (sample, ), path, dynamo=False,
                      input_names=['input'], output_names=['logits'],
                      dynamic_axes={'input': {0: 'batch'},
                                    'logits': {0: 'batch'}})
    session = onnxruntime.InferenceSession(
        path, providers=['CPUExecutionProvider'])
    onnx_out = session.run(None, {'input': sample.numpy()})[0]
    with torch.no_grad():
        torch_out = model(sample).numpy()
    return float(np.abs(onnx_out - torch_out).max())
