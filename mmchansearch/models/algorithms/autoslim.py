"""AutoSlim supernet training: sandwich rule with in-place distillation."""
from __future__ import annotations

import random
from collections.abc import Callable

import torch
from mmengine.optim import OptimWrapper
from torch import nn

from ...distributed import restore_rng, rng_state, shared_rng
from ...errors import ConfigError
from ...mutator import ChannelMutator
from ...registry import MODELS
from .base import ChannelSupernet, Subnet


@MODELS.register_module()
class AutoSlim(ChannelSupernet):
    """Slimmable supernet trained with the sandwich rule.

    Every step trains the max width, the min width and ``num_samples - 2``
    random widths (one random candidate per channel group); with
    ``distill``, the narrower ones learn the max width's detached soft
    predictions. All ranks sample the same widths.

    Args:
        architecture: the classifier config or instance.
        mutator: the :class:`ChannelMutator` config or instance.
        num_samples: subnets per step, max and min included (n >= 2).
        distill: in-place distillation from the max width.
        seed: seed of the width sampler; rank 0 draws one if None.
        data_preprocessor: defaults to the architecture's.
        init_cfg: mmengine init config.
        memory_format: see :class:`ChannelSupernet`.
    """

    def __init__(self,
                 architecture: dict | nn.Module,
                 mutator: dict | ChannelMutator | None = None,
                 num_samples: int = 4,
                 distill: bool = True,
                 seed: int | None = None,
                 data_preprocessor: dict | nn.Module | None = None,
                 init_cfg: dict | None = None,
                 memory_format: str = 'channels_last') -> None:
        if num_samples < 2:
            raise ConfigError(f'AutoSlim num_samples must be >= 2 (max and '
                              f'min width), got {num_samples}.')
        super().__init__(architecture, mutator, data_preprocessor, init_cfg,
                         memory_format=memory_format)
        self.num_samples = num_samples
        self.distill = distill
        self.seed = seed
        self._rng: random.Random | None = None

    def sandwich(self) -> list[Subnet]:
        """The subnets of one step: max, min, then random ones."""
        if self._rng is None:
            self._rng = shared_rng(self.seed)
        mutator, rng = self.mutator, self._rng
        return [('max', mutator.set_max), ('min', mutator.set_min)] + [
            (f'random{i}', lambda: mutator.sample(rng))
            for i in range(self.num_samples - 2)]

    def random_state(self) -> dict:
        """The width sampler's state, for a training checkpoint (see
        :class:`~mmchansearch.engine.RandomStateHook`): a resumed training
        goes on sampling the widths the uninterrupted one would have."""
        return {} if self._rng is None else dict(
            width_sampler=rng_state(self._rng))

    def load_random_state(self, state: dict) -> None:
        """Restores the width sampler from :meth:`random_state`."""
        if 'width_sampler' in state:
            self._rng = random.Random()
            restore_rng(self._rng, state['width_sampler'])

    def train_step(self, data: dict,
                   optim_wrapper: OptimWrapper) -> dict[str, torch.Tensor]:
        """One sandwich-rule step."""
        return self.train_subnets(data, optim_wrapper, self.sandwich(),
                                  self.distill)

    def eval_subnets(self) -> dict[str, Callable[[], None]]:
        """Validation reports the max and the min width."""
        return {'max': self.mutator.set_max, 'min': self.mutator.set_min}
