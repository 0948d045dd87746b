"""Runs a plain classifier (one that is not a toolbox algorithm) in the
fast memory format; the algorithms choose theirs with ``memory_format``."""
from __future__ import annotations

from mmengine.hooks import Hook

from ..distributed import unwrap
from ..memory_format import check_memory_format, to_memory_format
from ..registry import HOOKS


@HOOKS.register_module()
class MemoryFormatHook(Hook):
    """Converts the model's 4-D weights to ``memory_format`` before a run.

    Args:
        memory_format: 'channels_last' or 'contiguous'.
    """
    priority = 'VERY_HIGH'

    def __init__(self, memory_format: str = 'channels_last') -> None:
        check_memory_format(memory_format)
        self.memory_format = memory_format

    def before_run(self, runner) -> None:
        to_memory_format(unwrap(runner.model), self.memory_format)
