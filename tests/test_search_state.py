"""A search's state file: refused without --resume, refused against other
dependencies, --force starts over, read the same on every rank."""
import json

import pytest
import torch

from mmchansearch.engine.search_state import (
    SearchState,
    check_fresh_start,
    search_dependencies,
)
from mmchansearch.errors import ConfigError

CFG = dict(model=dict(type='AutoSlim', width=1),
           search_loop=dict(targets=[1e6], num_batches=2),
           train_dataloader=dict(batch_size=8, num_workers=4),
           randomness=dict(seed=0))


def _state(tmp_path, cfg=CFG, checkpoint=None, **kwargs) -> SearchState:
    return SearchState(str(tmp_path / 'state.json'),
                       search_dependencies(cfg, checkpoint), **kwargs)


def test_fresh_start_saves_and_resumes(tmp_path):
    assert _state(tmp_path).load() is None
    _state(tmp_path).save(dict(step=3))
    assert _state(tmp_path, resume=True).load() == dict(step=3)
    saved = json.loads((tmp_path / 'state.json').read_text())
    assert set(saved['depends_on']) == {
        'config.model', 'config.search_loop', 'config.train_dataloader',
        'config.randomness'}


def test_existing_state_without_resume_is_refused(tmp_path):
    _state(tmp_path).save(dict(step=3))
    with pytest.raises(ConfigError, match='add --resume to continue it'):
        _state(tmp_path).load()
    assert _state(tmp_path, force=True).load() is None  # starts over


@pytest.mark.parametrize('section', ['model', 'search_loop', 'randomness'])
def test_resume_with_another_config_section_is_refused(tmp_path, section):
    _state(tmp_path).save(dict(step=3))
    other = dict(CFG, **{section: dict(CFG[section], extra=1)})
    with pytest.raises(ConfigError,
                       match=f'another config.{section} than this run'):
        _state(tmp_path, other, resume=True).load()


def test_data_loading_workers_do_not_block_resume(tmp_path):
    _state(tmp_path).save(dict(step=3))
    other = dict(CFG, train_dataloader=dict(batch_size=8, num_workers=0))
    assert _state(tmp_path, other, resume=True).load() == dict(step=3)


def test_resume_with_another_checkpoint_content_is_refused(tmp_path):
    checkpoint = tmp_path / 'supernet.pth'
    torch.save(dict(w=torch.zeros(2)), checkpoint)
    _state(tmp_path, checkpoint=str(checkpoint)).save(dict(step=1))
    copy = tmp_path / 'moved.pth'  # the same weights elsewhere resume
    copy.write_bytes(checkpoint.read_bytes())
    assert _state(tmp_path, checkpoint=str(copy), resume=True).load()
    torch.save(dict(w=torch.ones(2)), checkpoint)  # same path, new weights
    with pytest.raises(ConfigError, match='another checkpoint than'):
        _state(tmp_path, checkpoint=str(checkpoint), resume=True).load()


def test_unreadable_state_is_a_clear_error(tmp_path):
    (tmp_path / 'state.json').write_text('{"step": ')
    with pytest.raises(ConfigError, match='cannot be read'):
        _state(tmp_path, resume=True).load()


def test_check_fresh_start_on_a_training_pointer(tmp_path):
    pointer = tmp_path / 'last_checkpoint'
    check_fresh_start(str(pointer), resume=False, force=False)  # none yet
    pointer.write_text('epoch_1.pth')
    with pytest.raises(ConfigError, match='earlier search in this work dir'):
        check_fresh_start(str(pointer), resume=False, force=False)
    check_fresh_start(str(pointer), resume=True, force=False)
    check_fresh_start(str(pointer), resume=False, force=True)


def test_ignored_keys_leave_the_fingerprint(tmp_path):
    """A key the state does not depend on is left out of its section's
    fingerprint; the section's other keys still count."""
    ignored = ('search_loop.num_batches', )
    saved = search_dependencies(CFG, ignored=ignored)
    assert saved != search_dependencies(CFG)
    other = dict(CFG, search_loop=dict(targets=[1e6], num_batches=8))
    assert search_dependencies(other, ignored=ignored) == saved
    moved = dict(CFG, search_loop=dict(targets=[2e6], num_batches=2))
    assert search_dependencies(moved, ignored=ignored) != saved
    no_key = dict(CFG, search_loop=dict(targets=[1e6]))
    assert search_dependencies(no_key) == saved


def test_accepted_dependencies_resume(tmp_path):
    _state(tmp_path).save(dict(step=3))
    other = dict(CFG, model=dict(type='AutoSlim', width=2))
    with pytest.raises(ConfigError, match='another config.model'):
        _state(tmp_path, other, resume=True).load()
    accepted = [search_dependencies(CFG)]
    assert _state(tmp_path, other, resume=True,
                  accepted=accepted).load() == dict(step=3)
