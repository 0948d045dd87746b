"""Loops and helpers that run algorithms inside mmengine's Runner."""
from .batch_norm import batch_statistics, recalibrate_bn
from .greedy_search import GreedySlimmingLoop
from .network_adjustment import NetworkAdjustmentLoop
from .subnet_loops import SubnetTestLoop, SubnetValLoop

__all__ = ['GreedySlimmingLoop', 'NetworkAdjustmentLoop', 'SubnetTestLoop',
           'SubnetValLoop',            'batch_statistics', 'recalibrate_bn']
