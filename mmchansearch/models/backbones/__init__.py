"""Search-space backbones, registered in the toolbox's MODELS."""
from .fbnet import FBNetSearchSpace
from .plain_inverted_bottleneck import PlainInvertedBottleneckNet
from .rexnet import ReXNet

__all__ = ['FBNetSearchSpace', 'PlainInvertedBottleneckNet', 'ReXNet']
