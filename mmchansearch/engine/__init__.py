"""Loops and helpers that run algorithms inside mmengine's Runner.

One search loop per method, in ``<method>_search.py``; the loops' names
before the renaming still build, with a warning (``deprecated_names``).
"""
from . import deprecated_names  # noqa: F401  (registers the old names)
from .autoslim_search import AutoSlimSearchLoop
from .batch_norm import batch_statistics, recalibrate_bn
from .channel_cfg_hook import ChannelCfgMetaHook
from .differentiable_search import DifferentiableTrainLoop
from .dmasking_search import DMaskingNASSearchLoop
from .dnas_search import DNASSearchLoop
from .memory_format_hook import MemoryFormatHook
from .network_adjustment_search import NetworkAdjustmentSearchLoop
from .random_state import RandomStateHook
from .rexnet_search import ReXNetSearchLoop
from .subnet_loops import SubnetTestLoop, SubnetValLoop

__all__ = ['AutoSlimSearchLoop', 'ChannelCfgMetaHook',
           'DMaskingNASSearchLoop', 'DNASSearchLoop',
           'DifferentiableTrainLoop', 'MemoryFormatHook',
           'NetworkAdjustmentSearchLoop', 'RandomStateHook',
           'ReXNetSearchLoop', 'SubnetTestLoop', 'SubnetValLoop',
           'batch_statistics', 'recalibrate_bn']
