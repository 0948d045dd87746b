"""Search-space backbones, registered in the toolbox's MODELS."""
from .fbnet import FBNetSearchSpace
from .rexnet import ReXNet

__all__ = ['FBNetSearchSpace', 'ReXNet']
