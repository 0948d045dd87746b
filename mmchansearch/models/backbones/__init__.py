"""Search-space backbones, registered in the toolbox's MODELS."""
from .rexnet import ReXNet

__all__ = ['ReXNet']
