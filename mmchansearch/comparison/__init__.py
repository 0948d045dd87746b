"""Comparing the search methods on one budget (``tools/compare.py``).

Every method searches under the same FLOPs (or latency) budget, its result
and the uniform-width baseline are retrained with one recipe and the same
seeds, and one table reports cost and accuracy.
"""
from ..tool_runs import ToolRunner, train_and_test
from . import deprecated_names  # noqa: F401  (registers the old names)
from .measure import NetworkCosts, measure_networks
from .methods import ComparedMethod, SearchContext
from .report import ComparisonRow, comparison_table, plot_comparison
from .runs import derive_config

__all__ = [
    'ComparedMethod', 'ComparisonRow', 'NetworkCosts', 'SearchContext',
    'ToolRunner', 'comparison_table', 'derive_config', 'measure_networks',
    'plot_comparison', 'train_and_test'
]
