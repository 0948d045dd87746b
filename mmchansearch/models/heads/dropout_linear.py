"""mmpretrain's linear head with dropout on its input features."""
from __future__ import annotations

from mmpretrain.models.heads import LinearClsHead
from torch import nn

from ...errors import ConfigError
from ...registry import MODELS


@MODELS.register_module()
class DropoutLinearClsHead(LinearClsHead):
    """:class:`mmpretrain.models.heads.LinearClsHead` with dropout before
    the fc layer, as ReXNet's published classifier (dropout 0.2).

    Args:
        dropout_rate: probability of zeroing a feature in training.
        **kwargs: :class:`LinearClsHead`'s arguments.
    """

    def __init__(self, dropout_rate: float = 0.2, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0 <= dropout_rate < 1:
            raise ConfigError(f'head dropout_rate must be in [0, 1), got '
                              f'{dropout_rate!r}.')
        self.dropout = nn.Dropout(dropout_rate)

    def pre_logits(self, feats):
        """The last stage's pooled features, dropped out in training."""
        return self.dropout(super().pre_logits(feats))
