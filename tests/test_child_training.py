"""Building and scheduling the child trainings of a search."""
import pytest
from mmengine.config import Config

from mmchansearch.engine.child_training import (
    fresh_child_config,
    shorten_schedule,
)
from mmchansearch.errors import ConfigError


def test_a_shortened_schedule_runs_its_whole_course():
    cfg = Config(dict(
        train_cfg=dict(by_epoch=True, max_epochs=30, val_interval=1),
        param_scheduler=[
            dict(type='LinearLR', begin=0, end=3),
            dict(type='CosineAnnealingLR', begin=3, end=30, T_max=27),
            dict(type='StepLR', step_size=1, gamma=0.98)]))
    shorten_schedule(cfg, 10)
    assert cfg.train_cfg == dict(by_epoch=True, max_epochs=10,
                                 val_begin=10, val_interval=10)
    warmup, cosine, step = cfg.param_scheduler
    assert (warmup.begin, warmup.end) == (0, 1)
    assert (cosine.begin, cosine.end, cosine.T_max) == (1, 10, 9)
    assert step == dict(type='StepLR', step_size=1, gamma=0.98)
    one = Config(dict(train_cfg=dict(max_epochs=30),
                      param_scheduler=dict(type='CosineAnnealingLR',
                                           begin=0, end=30)))
    shorten_schedule(one, 1)
    assert (one.param_scheduler.begin, one.param_scheduler.end) == (0, 1)


def test_an_iteration_schedule_cannot_be_shortened():
    cfg = Config(dict(train_cfg=dict(by_epoch=False, max_iters=1000)))
    with pytest.raises(ConfigError, match='train by epochs'):
        shorten_schedule(cfg, 2)


def test_a_fresh_child_trains_alone_from_scratch(tmp_path):
    search = Config(dict(search_loop=dict(type='X'), launcher='pytorch',
                         model_wrapper_cfg=dict(type='ChannelSearchDDP'),
                         load_from='a.pth', resume=True, model=dict()))
    child = fresh_child_config(search, str(tmp_path), 'c0')
    assert 'search_loop' not in child and 'model_wrapper_cfg' not in child
    assert (child.launcher, child.load_from, child.resume) == \
        ('none', None, False)
    assert (child.work_dir, child.experiment_name) == (str(tmp_path), 'c0')
    assert search.launcher == 'pytorch'  # a copy
