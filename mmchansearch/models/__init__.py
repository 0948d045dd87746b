"""Algorithms, search-space backbones and the distributed wrapper."""
from .algorithms import (
                         AutoSlim,
                         ChannelSupernet,
                         DMaskingNAS,
                         SlimmableNetwork,
)
from .backbones import ReXNet
from .wrappers import ChannelSearchDDP

__all__ = ['AutoSlim', 'ChannelSupernet', 'ChannelSearchDDP', 'DMaskingNAS',
           'ReXNet', 'SlimmableNetwork']
