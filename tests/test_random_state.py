"""RandomStateHook's states: plain values that round-trip exactly.

The kill -9 / --resume tests of every long job are next to the job's
other tests (test_autoslim_pipeline, test_dmasking, test_dnas,
test_network_adjustment, test_rexnet_search); docs/reliability.md lists them.
"""
import random

import numpy as np
import torch

from mmchansearch.engine.random_state import (
    capture_random_state,
    restore_random_state,
)
from mmchansearch.fileio import load_checkpoint_file
from mmchansearch.models.algorithms import AutoSlim


def _draws(model=None) -> list:
    widths = [] if model is None else [
        model.mutator.sample(model._rng) for _ in range(2)]
    return [random.random(), float(np.random.rand()),
            torch.rand(3).tolist(), widths]


def test_states_round_trip_through_a_weights_only_checkpoint(
        tmp_path, make_classifier):
    model = AutoSlim(make_classifier('mobilenet_v2'),
                     dict(type='ChannelMutator', input_shape=(3, 32, 32)),
                     seed=3)
    model.sandwich()  # creates the width sampler
    _draws(model)
    path = tmp_path / 'checkpoint.pth'
    torch.save(dict(random_state=[capture_random_state(model)]), path)
    expected = _draws(model)
    _draws(model)  # the generators move on
    restore_random_state(load_checkpoint_file(path)['random_state'][0],
                         model)
    assert _draws(model) == expected


def test_a_model_without_generators_is_left_alone():
    module = torch.nn.Linear(2, 2)
    state = capture_random_state(module)
    assert 'model' not in state
    expected = _draws()
    restore_random_state(state, module)
    assert _draws() == expected
