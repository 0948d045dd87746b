"""Registries of mmchansearch, children of mmpretrain's.

A config with ``default_scope = 'mmchansearch'`` can mix the toolbox's types
(``type='AutoSlim'``) with every mmpretrain and mmengine type
(``type='ResNet'``, ``type='SGD'``): lookups fall back to the parents.
"""
from collections.abc import Callable, Mapping

from mmengine.logging import MMLogger
from mmengine.registry import Registry
from mmpretrain import registry as pretrain
from mmpretrain.utils import (
    register_all_modules as register_mmpretrain_modules,
)


def _child(parent: Registry, name: str, *locations: str) -> Registry:
    return Registry(name, parent=parent, scope='mmchansearch',
                    locations=list(locations))


MODELS = _child(pretrain.MODELS, 'model', 'mmchansearch.models',
                'mmchansearch.mutator')
MODEL_WRAPPERS = _child(pretrain.MODEL_WRAPPERS, 'model_wrapper',
                        'mmchansearch.models')
LOOPS = _child(pretrain.LOOPS, 'loop', 'mmchansearch.engine')
HOOKS = _child(pretrain.HOOKS, 'hook', 'mmchansearch.engine')
DATASETS = _child(pretrain.DATASETS, 'dataset', 'mmchansearch.datasets')
TRANSFORMS = _child(pretrain.TRANSFORMS, 'transform',
                    'mmchansearch.datasets')
METRICS = _child(pretrain.METRICS, 'metric', 'mmchansearch.engine')
# Children with nothing of the toolbox's own: they let the Runner build
# mmengine/mmpretrain types under the 'mmchansearch' scope without warnings.
DATA_SAMPLERS = _child(pretrain.DATA_SAMPLERS, 'data sampler')
OPTIMIZERS = _child(pretrain.OPTIMIZERS, 'optimizer')
OPTIM_WRAPPERS = _child(pretrain.OPTIM_WRAPPERS, 'optimizer_wrapper')
OPTIM_WRAPPER_CONSTRUCTORS = _child(pretrain.OPTIM_WRAPPER_CONSTRUCTORS,
                                    'optimizer wrapper constructor',
                                    'mmchansearch.optim')
PARAM_SCHEDULERS = _child(pretrain.PARAM_SCHEDULERS, 'parameter scheduler')
WEIGHT_INITIALIZERS = _child(pretrain.WEIGHT_INITIALIZERS,
                             'weight initializer')
EVALUATORS = _child(pretrain.EVALUATORS, 'evaluator')
VISUALIZERS = _child(pretrain.VISUALIZERS, 'visualizer')
VISBACKENDS = _child(pretrain.VISBACKENDS, 'vis_backend')
LOG_PROCESSORS = _child(pretrain.LOG_PROCESSORS, 'log processor')
RUNNERS = _child(pretrain.RUNNERS, 'runner')
RUNNER_CONSTRUCTORS = _child(pretrain.RUNNER_CONSTRUCTORS,
                             'runner constructor')
TASK_UTILS = _child(pretrain.TASK_UTILS, 'task util')
# The methods tools/compare.py runs (not models: each drives tools/).
COMPARED_METHODS = Registry('compared method', scope='mmchansearch',
                            locations=['mmchansearch.comparison.methods',
                                       'mmchansearch.comparison.'
                                       'deprecated_names'])



def register_deprecated_names(registry: Registry,
                              names: Mapping[str, type]) -> None:
    """Registers old type names that still build their renamed class.

    Building ``type=OLD`` builds the same class as ``type=NEW`` and logs
    one warning through mmengine's logger that names the new type.

    Args:
        registry: the registry holding the new names.
        names: old name -> the class it now builds (registered in
            ``registry`` under its new name).
    """
    new_names = {cls: name for name, cls in registry.module_dict.items()}
    for old, cls in names.items():
        new = new_names.get(cls, cls.__name__)
        registry.register_module(name=old,
                                 module=_deprecated_builder(old, new, cls))


def _deprecated_builder(old: str, new: str, cls: type) -> Callable:
    def build(*args, **kwargs):
        MMLogger.get_current_instance().warning(
            f"type='{old}' is deprecated, use type='{new}' (same class).")
        return cls(*args, **kwargs)
    build.__name__ = build.__qualname__ = old
    build.__doc__ = f'Deprecated name of {new}: builds {cls.__name__}.'
    return build


# Lookups fall back to mmpretrain's registries: fill them once, here.
register_mmpretrain_modules(init_default_scope=False)
