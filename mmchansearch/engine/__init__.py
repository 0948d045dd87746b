"""Loops and helpers that run algorithms inside mmengine's Runner."""
from .batch_norm import batch_statistics, recalibrate_bn
from .channel_cfg_hook import ChannelCfgMetaHook
from .dmasking_search import DMaskingSearchLoop, DMaskingTrainLoop
from .dnas_search import DNASSearchLoop
from .greedy_search import GreedySlimmingLoop
from .memory_format_hook import MemoryFormatHook
from .network_adjustment import NetworkAdjustmentLoop
from .random_state import RandomStateHook
from .rexnet_search import ChannelParameterizationSearchLoop
from .subnet_loops import SubnetTestLoop, SubnetValLoop

__all__ = ['ChannelCfgMetaHook', 'ChannelParameterizationSearchLoop',
           'DMaskingSearchLoop',
           'DMaskingTrainLoop', 'DNASSearchLoop', 'GreedySlimmingLoop',
           'MemoryFormatHook',
           'NetworkAdjustmentLoop', 'RandomStateHook', 'SubnetTestLoop',
           'SubnetValLoop',
           'batch_statistics', 'recalibrate_bn']
