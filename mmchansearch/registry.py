"""Registries of mmchansearch, children of mmpretrain's.

A config with ``default_scope = 'mmchansearch'`` can mix the toolbox's types
(``type='AutoSlim'``) with every mmpretrain and mmengine type
(``type='ResNet'``, ``type='FashionMNIST'``): lookups fall back to the parents.
"""
from mmengine.registry import Registry
from mmpretrain.registry import DATASETS as PRETRAIN_DATASETS
from mmpretrain.registry import HOOKS as PRETRAIN_HOOKS
from mmpretrain.registry import LOOPS as PRETRAIN_LOOPS
from mmpretrain.registry import METRICS as PRETRAIN_METRICS
from mmpretrain.registry import MODEL_WRAPPERS as PRETRAIN_MODEL_WRAPPERS
from mmpretrain.registry import MODELS as PRETRAIN_MODELS
from mmpretrain.registry import TRANSFORMS as PRETRAIN_TRANSFORMS
from mmpretrain.utils import (
                  register_all_modules as register_mmpretrain_modules,
)

MODELS = Registry('model', parent=PRETRAIN_MODELS, scope='mmchansearch',
                  locations=['mmchansearch.models', 'mmchansearch.mutator'])
MODEL_WRAPPERS = Registry('model_wrapper', parent=PRETRAIN_MODEL_WRAPPERS,
                          scope='mmchansearch',
                          locations=['mmchansearch.models'])
LOOPS = Registry('loop', parent=PRETRAIN_LOOPS, scope='mmchansearch',
                 locations=['mmchansearch.engine'])
HOOKS = Registry('hook', parent=PRETRAIN_HOOKS, scope='mmchansearch',
                 locations=['mmchansearch.engine'])
DATASETS = Registry('dataset', parent=PRETRAIN_DATASETS, scope='mmchansearch',
                    locations=['mmchansearch.datasets'])
TRANSFORMS = Registry('transform', parent=PRETRAIN_TRANSFORMS,
                      scope='mmchansearch',
                      locations=['mmchansearch.datasets'])
METRICS = Registry('metric', parent=PRETRAIN_METRICS, scope='mmchansearch',
                   locations=['mmchansearch.engine'])

# Lookups fall back to mmpretrain's registries: fill them once, here.
register_mmpretrain_modules(init_default_scope=False)
