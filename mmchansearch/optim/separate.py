"""One optimizer per submodule (weights and architecture parameters)."""
from __future__ import annotations

from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from torch import nn

from ..distributed import unwrap
from ..errors import ConfigError
from ..registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SeparateOptimWrapperConstructor:
    """Builds an ``OptimWrapperDict`` with one optimizer per named submodule.

    Example (DMaskingNAS: SGD on the network, Adam on the alphas)::

        optim_wrapper = dict(
            constructor='SeparateOptimWrapperConstructor',
            architecture=dict(optimizer=dict(type='SGD', lr=0.05)),
            arch_params=dict(optimizer=dict(type='Adam', lr=0.01)))

    Each entry is an ordinary optim_wrapper config (``paramwise_cfg``
    included) applied to ``model.<name>``.

    Args:
        optim_wrapper_cfg: name -> optim_wrapper config.
        paramwise_cfg: must be None (give it per entry).
    """

    def __init__(self, optim_wrapper_cfg: dict,
                 paramwise_cfg: dict | None = None) -> None:
        if paramwise_cfg is not None:
            raise ConfigError('SeparateOptimWrapperConstructor: give '
                              'paramwise_cfg inside each entry.')
        self.optim_wrapper_cfg = dict(optim_wrapper_cfg)

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        model = unwrap(model)
        wrappers = {}
        for name, cfg in self.optim_wrapper_cfg.items():
            if not hasattr(model, name):
                raise ConfigError(
                    f'optim_wrapper.{name}: the model has no submodule '
                    f'{name!r}; entries name submodules, e.g. architecture '
                    'and arch_params.')
            cfg = dict(cfg)
            paramwise = cfg.pop('paramwise_cfg', None)
            cfg.setdefault('type', 'OptimWrapper')
            wrappers[name] = DefaultOptimWrapperConstructor(
                cfg, paramwise)(getattr(model, name))
        return OptimWrapperDict(**wrappers)
