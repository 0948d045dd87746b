"""Search algorithms: mmengine models that decide the train step."""
from .autoslim import AutoSlim
from .base import ChannelSupernet
from .dmasking import DMaskingNAS
from .dnas import DNAS
from .slimmable import SlimmableNetwork

__all__ = ['AutoSlim', 'ChannelSupernet', 'DMaskingNAS', 'DNAS',
           'SlimmableNetwork']
