"""Export of a searched subnet: static model, checkpoint and ONNX."""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from mmengine.config import Config
from torch import nn

from .analysis import forward_logits
from .channel_cfg import ChannelConfig, parse_channel_cfg
from .errors import CheckpointMismatchError
from .fileio import atomic_torch_save
from .models.algorithms import ChannelSupernet
from .supernet import (
    build_supernet,
    load_state_strictly,
    read_checkpoint,
    state_dict_of,
)
from .version import __version__


class LogitsModule(nn.Module):
    """Wraps a classifier (an mmengine model, run in 'tensor' mode, or a
    plain module) so that ``forward(x)`` returns its logits."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return forward_logits(self.classifier, inputs)


def export_subnet(supernet: ChannelSupernet,
                  channel_cfg: ChannelConfig) -> nn.Module:
    """A physically smaller static classifier for ``channel_cfg``.

    The supernet is left at the widths of ``channel_cfg``.
    """
    supernet.mutator.set_choices(channel_cfg)
    return supernet.mutator.export_static().eval()


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
    supernet = build_supernet(cfg, meta.get('input_shape'))
    static = export_subnet(supernet, channel_cfg)
    load_state_strictly(static, state_dict_of(ckpt), checkpoint)
    return static


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
