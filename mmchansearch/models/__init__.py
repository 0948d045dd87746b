"""Algorithms, search-space backbones and the distributed wrapper."""
from .algorithms import (
                         DNAS,
                         AutoSlim,
                         ChannelSupernet,
                         DMaskingNAS,
                         SlimmableNetwork,
)
from .backbones import FBNetSearchSpace, ReXNet
from .heads import DropoutLinearClsHead
from .wrappers import ChannelSearchDDP

__all__ = ['AutoSlim', 'ChannelSupernet', 'ChannelSearchDDP', 'DMaskingNAS',
           'DNAS', 'DropoutLinearClsHead', 'FBNetSearchSpace', 'ReXNet',
           'SlimmableNetwork']
