"""Algorithms and search-space backbones registered in ``MODELS``."""
from .algorithms import ChannelSupernet

__all__ = ['ChannelSupernet']
