"""Algorithms, search-space backbones and the distributed wrapper."""
from .algorithms import AutoSlim, ChannelSupernet, SlimmableNetwork
from .backbones import ReXNet
from .wrappers import ChannelSearchDDP

__all__ = ['AutoSlim', 'ChannelSupernet', 'ChannelSearchDDP',
           'ReXNet', 'SlimmableNetwork']
