"""Search algorithms: mmengine models that decide the train step."""
from .base import ChannelSupernet

__all__ = ['ChannelSupernet']
