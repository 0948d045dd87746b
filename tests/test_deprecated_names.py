"""The type names from before each method had one name still build the
renamed class, with one warning through mmengine's logger."""
from __future__ import annotations

from types import SimpleNamespace

from mmengine.config import Config
from mmengine.registry import DefaultScope, Registry

from mmchansearch.comparison.deprecated_names import DEPRECATED_METHODS
from mmchansearch.comparison.methods import AutoSlimRun, DNASRun
from mmchansearch.engine.deprecated_names import DEPRECATED_LOOPS
from mmchansearch.engine.rexnet_search import ReXNetSearchLoop
from mmchansearch.registry import (
    COMPARED_METHODS,
    LOOPS,
    register_deprecated_names,
)

KWARGS = dict(name='m', search='s.py', retrain='r.py')


def test_an_old_name_builds_the_same_class_and_warns(warnings):
    registry = Registry('thing')

    @registry.register_module(name='new')
    class Thing:
        def __init__(self, x: int) -> None:
            self.x = x

    register_deprecated_names(registry, {'Old': Thing})
    thing = registry.build(dict(type='Old', x=3))
    assert type(thing) is Thing and thing.x == 3
    assert [r.getMessage() for r in warnings] == [
        "type='Old' is deprecated, use type='new' (same class)."]
    registry.build(dict(type='new', x=1))
    assert len(warnings) == 1


def test_every_old_loop_name_is_registered_beside_its_new_one():
    assert set(DEPRECATED_LOOPS) == {
        'GreedySlimmingLoop', 'NetworkAdjustmentLoop',
        'ChannelParameterizationSearchLoop', 'DMaskingTrainLoop',
        'DMaskingSearchLoop'}
    for old, cls in DEPRECATED_LOOPS.items():
        assert LOOPS.get(cls.__name__) is cls
        assert LOOPS.get(old) is not cls and callable(LOOPS.get(old))


def test_an_old_loop_name_still_builds_and_warns(tmp_path, warnings):
    runner = SimpleNamespace(cfg=Config(dict(model=dict(
        type='ImageClassifier',
        backbone=dict(type='ReXNet', widen_factor=0.25,
                      stage_blocks=(1, 1, 1, 1, 1, 1)),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10,
                  in_channels=320)))), work_dir=str(tmp_path))
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        loop = LOOPS.build(
            dict(type='ChannelParameterizationSearchLoop',
                 input_shape=(3, 32, 32), divisor=8, first_channels=(8, 32),
                 increase=(16, 96)), default_args=dict(runner=runner))
    assert type(loop) is ReXNetSearchLoop
    assert [r.getMessage() for r in warnings] == [
        "type='ChannelParameterizationSearchLoop' is deprecated, use "
        "type='ReXNetSearchLoop' (same class)."]


def test_old_compared_method_names_still_build_and_warn(warnings):
    assert COMPARED_METHODS.build(dict(type='DNAS', **KWARGS)).__class__ \
        is DNASRun
    built = COMPARED_METHODS.build(dict(type='GreedySlimming', supernet='t.py',
                                        **KWARGS))
    assert type(built) is AutoSlimRun
    assert [r.getMessage() for r in warnings] == [
        "type='DNAS' is deprecated, use type='dnas' (same class).",
        "type='GreedySlimming' is deprecated, use type='autoslim' (same "
        "class)."]
    for old, cls in DEPRECATED_METHODS.items():
        new = next(n for n, c in COMPARED_METHODS.module_dict.items()
                   if c is cls)
        assert new == new.lower() and new != old
