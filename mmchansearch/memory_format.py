"""The memory format networks train and run in.

On CPUs (oneDNN) and on GPUs with mixed precision, convolutions run much
faster on channels-last (NHWC) tensors than on contiguous (NCHW) ones: on
2 CPU cores a MobileNetV2 step at 32x32 runs about 2x faster (see
``benchmarks/bench_training_speed.py``). Converting a network's 4-D
weights is enough: a convolution with channels-last weights returns
channels-last activations, which every following layer keeps, and inputs
may stay contiguous. Results are the same up to floating-point rounding;
state dicts and checkpoints do not depend on the format.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn

from .analysis import forward_logits
from .errors import ConfigError

MEMORY_FORMATS = {
    'channels_last': torch.channels_last,
    'contiguous': torch.contiguous_format,
}


def check_memory_format(name: str) -> torch.memory_format:
    """The torch memory format called ``name``."""
    if name not in MEMORY_FORMATS:
        raise ConfigError(f'memory_format {name!r} is unknown; use one of '
                          f'{sorted(MEMORY_FORMATS)}.')
    return MEMORY_FORMATS[name]


def to_memory_format(module: nn.Module, name: str) -> nn.Module:
    """Stores the 4-D parameters and buffers of ``module`` in the memory
    format ``name`` ('channels_last' or 'contiguous'), in place."""
    return module.to(memory_format=check_memory_format(name))


def runs_channels_last(model: nn.Module,
                       input_shape: Sequence[int]) -> bool:
    """Whether ``model``, stored channels-last, runs a forward on one
    sample of (C, H, W) ``input_shape`` (in eval mode, without gradients;
    the model is left unchanged).

    A network that flattens a 4-D activation with ``view`` (mmpretrain's
    VGG: ``x.view(x.size(0), -1)``) cannot run channels-last: the view
    fails. Any other error is left to the real forward to raise.
    """
    param = next(model.parameters(), None)
    inputs = torch.zeros(1, *input_shape,
                         device=param.device if param is not None else 'cpu')
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            forward_logits(model, inputs)
    except RuntimeError as err:
        return 'view size is not compatible' not in str(err)
    finally:
        model.train(was_training)
    return True


# oneDNN caches one compiled primitive per convolution shape, 1024 by
# default. A supernet step runs several widths, each a new set of shapes,
# and the default cache thrashes: primitives are compiled again at every
# step (the sandwich step runs ~1.5x faster with the larger cache). The
# variable is read when the first primitive is made, so it is set here, at
# import; a value set by the user wins.
PRIMITIVE_CACHE_CAPACITY = 16384
os.environ.setdefault('ONEDNN_PRIMITIVE_CACHE_CAPACITY',
                      str(PRIMITIVE_CACHE_CAPACITY))
