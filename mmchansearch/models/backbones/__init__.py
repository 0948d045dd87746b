"""Search-space backbones, registered in the toolbox's MODELS."""
from .fbnet import FBNetSearchSpace
from .fbnetv2 import FBNetV2SearchSpace
from .plain_inverted_bottleneck import PlainInvertedBottleneckNet
from .rexnet import ReXNet

__all__ = ['FBNetSearchSpace', 'FBNetV2SearchSpace',
           'PlainInvertedBottleneckNet', 'ReXNet']
