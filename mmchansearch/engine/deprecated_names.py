"""The loops' names before each method had one name: configs that use them
still build, with a warning naming the new type."""
from ..registry import LOOPS, register_deprecated_names
from .autoslim_search import AutoSlimSearchLoop
from .differentiable_search import DifferentiableTrainLoop
from .dmasking_search import DMaskingNASSearchLoop
from .network_adjustment_search import NetworkAdjustmentSearchLoop
from .rexnet_search import ReXNetSearchLoop

DEPRECATED_LOOPS = {
    'GreedySlimmingLoop': AutoSlimSearchLoop,
    'NetworkAdjustmentLoop': NetworkAdjustmentSearchLoop,
    'ChannelParameterizationSearchLoop': ReXNetSearchLoop,
    'DMaskingTrainLoop': DifferentiableTrainLoop,
    'DMaskingSearchLoop': DMaskingNASSearchLoop,
}
register_deprecated_names(LOOPS, DEPRECATED_LOOPS)
