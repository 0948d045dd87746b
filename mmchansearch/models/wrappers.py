"""The model wrapper used for distributed training of every algorithm."""
from __future__ import annotations

from mmengine.model import MMDistributedDataParallel
from mmengine.optim import OptimWrapper
from mmengine.registry import MODEL_WRAPPERS as ENGINE_MODEL_WRAPPERS
from torch import nn

from ..registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class ChannelSearchDDP(MMDistributedDataParallel):
    """DDP that hands the whole train step to the algorithm.

    mmengine's wrapper runs one forward and one backward per step; channel
    search runs one per subnet. The algorithm's ``train_step`` averages the
    gradients itself (:func:`mmchansearch.distributed.average_gradients`);
    DDP still broadcasts the initial weights from rank 0. Models that are
    not algorithms of this toolbox train exactly as with mmengine's wrapper.
    On CPUs (gloo) the ``device_ids`` mmengine's Runner passes are dropped.
    """

    def __init__(self, module: nn.Module, device_ids=None, **kwargs) -> None:
        if not any(p.is_cuda for p in module.parameters()):
            device_ids = None
        super().__init__(module=module, device_ids=device_ids, **kwargs)

    def train_step(self, data: dict | tuple | list,
                   optim_wrapper: OptimWrapper) -> dict:
        """The algorithm's train step; plain models train as usual."""
        from .algorithms import ChannelSupernet
        from .algorithms.differentiable import DifferentiableSearch
        if isinstance(self.module, (ChannelSupernet, DifferentiableSearch)):
            return self.module.train_step(data, optim_wrapper)
        return super().train_step(data, optim_wrapper)


# mmengine's Runner looks a wrapper up with ``get`` in its own registry,
# which ignores the default scope: register it there too.
ENGINE_MODEL_WRAPPERS.register_module(module=ChannelSearchDDP)
