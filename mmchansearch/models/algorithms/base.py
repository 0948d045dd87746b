"""The supernet every channel-search algorithm is built on."""
from __future__ import annotations

from typing import Any

from mmengine.model import BaseModel
from torch import nn

from ...mutator import ChannelMutator
from ...registry import MODELS


@MODELS.register_module()
class ChannelSupernet(BaseModel):
    """An mmpretrain classifier made channel-searchable.

    The architecture's channel groups are found and its layers made dynamic
    by the mutator; the forward is the architecture's, at the mutator's
    current widths. Search algorithms subclass this and override
    ``train_step``; used as is, it trains whatever widths are set.

    Args:
        architecture: config or instance of the classifier (for example an
            mmpretrain ``ImageClassifier``).
        mutator: config or instance of the :class:`ChannelMutator`.
        data_preprocessor: defaults to the architecture's.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 architecture: dict | nn.Module,
                 mutator: dict | ChannelMutator | None = None,
                 data_preprocessor: dict | nn.Module | None = None,
                 init_cfg: dict | None = None) -> None:
        if isinstance(architecture, dict):
            architecture = MODELS.build(architecture)
        if data_preprocessor is None:
            data_preprocessor = getattr(architecture, 'data_preprocessor',
                                        None)
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.architecture = architecture
        mutator = mutator if mutator is not None else dict(
            type='ChannelMutator')
        self.mutator: ChannelMutator = MODELS.build(mutator) \
            if isinstance(mutator, dict) else mutator
        self.mutator.prepare(self.architecture)

    def forward(self, inputs: Any, data_samples: Any = None,
                mode: str = 'tensor') -> Any:
        """The architecture's forward at the current widths."""
        return self.architecture(inputs, data_samples, mode)
