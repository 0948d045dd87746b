"""The compared methods' type names before each method had one name:
compare configs that use them still build, with a warning naming the new
type."""
from ..registry import COMPARED_METHODS, register_deprecated_names
from .methods import (
    AutoSlimRun,
    DMaskingNASRun,
    DNASRun,
    NetworkAdjustmentRun,
    ReXNetRun,
    UniformWidthRun,
)

DEPRECATED_METHODS = {
    'UniformWidth': UniformWidthRun,
    'GreedySlimming': AutoSlimRun,
    'NetworkAdjustment': NetworkAdjustmentRun,
    'ChannelParameterization': ReXNetRun,
    'DMaskingNAS': DMaskingNASRun,
    'DNAS': DNASRun,
}
register_deprecated_names(COMPARED_METHODS, DEPRECATED_METHODS)
