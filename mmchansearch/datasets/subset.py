"""A dataset wrapper keeping a contiguous range of samples."""
from __future__ import annotations

import copy
import random
from typing import Any

from ..errors import ConfigError
from ..registry import DATASETS


@DATASETS.register_module()
class SubsetDataset:
    """Samples ``[start, stop)`` of a dataset, like ``dataset[start:stop]``.

    Used to hold out part of a training set, e.g. to train a supernet on
    Fashion-MNIST training images ``[0, 50000)`` and evaluate subnets during
    the search on ``[50000, 60000)``, which it never saw; the test files
    stay untouched for the final numbers. Unlike ``indices=[...]`` of
    mmengine's ``BaseDataset`` the config stays two integers long.
    The range is contiguous: it is a fair sample only of a dataset in
    random order (Fashion-MNIST's files are), not of one sorted by class
    (ImageNet's annotation files are); for those, ``permute_seed`` takes
    the range of a fixed random permutation instead, so that two subsets
    with the same seed and disjoint ranges are a random split.

    Like mmengine's dataset wrappers it is not a ``BaseDataset``: it
    forwards ``metainfo``, ``get_data_info`` and ``__getitem__`` to the
    wrapped dataset and loads it lazily when asked to.

    Args:
        dataset: the wrapped dataset, or its config (built with
            ``DATASETS``).
        start: index of the first sample kept (>= 0).
        stop: one past the last sample kept; ``None`` keeps the rest.
        lazy_init: defer loading the wrapped dataset (and checking the
            range against its length) until :meth:`full_init`.
        permute_seed: when set, ``[start, stop)`` indexes a random
            permutation of the dataset drawn with this seed.

    Raises:
        ConfigError: the range is negative, empty, or past the end of the
            wrapped dataset.
    """

    def __init__(self,
                 dataset: dict | Any,
                 start: int = 0,
                 stop: int | None = None,
                 lazy_init: bool = False,
                 permute_seed: int | None = None) -> None:
        if not isinstance(start, int) or start < 0:
            raise ConfigError(
                f'SubsetDataset: start={start!r}; expected an integer >= 0.')
        if stop is not None and (not isinstance(stop, int) or stop <= start):
            raise ConfigError(
                f'SubsetDataset: stop={stop!r} with start={start}; expected '
                f'None or an integer > {start} (the range [start, stop) '
                'must not be empty).')
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        if not hasattr(dataset, '__getitem__') or not hasattr(
                dataset, '__len__'):
            raise TypeError('SubsetDataset: dataset must be a config dict or '
                            f'a dataset, got {type(dataset).__name__}.')
        self.dataset = dataset
        self.start = start
        self.stop = stop
        self.permute_seed = permute_seed
        self._order: list[int] | None = None
        self._metainfo = getattr(dataset, 'metainfo', {})
        self._len = 0
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        """The meta information of the wrapped dataset (a copy)."""
        return copy.deepcopy(self._metainfo)

    def full_init(self) -> None:
        """Loads the wrapped dataset and checks the range against it."""
        if self._fully_initialized:
            return
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()
        total = len(self.dataset)
        stop = total if self.stop is None else self.stop
        if stop > total or self.start >= stop:
            raise ConfigError(
                f'SubsetDataset: range [{self.start}, {self.stop}) does not '
                f'fit the wrapped {type(self.dataset).__name__} of {total} '
                f'samples; expected 0 <= start < stop <= {total}.')
        self._len = stop - self.start
        if self.permute_seed is not None:
            self._order = list(range(total))
            random.Random(self.permute_seed).shuffle(self._order)
        self._fully_initialized = True

    def _wrapped_index(self, idx: int) -> int:
        """The wrapped dataset's index of this subset's sample ``idx``."""
        self.full_init()
        if idx < 0:
            idx += self._len
        if not 0 <= idx < self._len:
            raise IndexError(f'SubsetDataset index {idx} out of range for '
                             f'{self._len} samples.')
        index = self.start + idx
        return self._order[index] if self._order is not None else index

    def get_data_info(self, idx: int) -> dict:
        """The annotation of sample ``idx`` of the subset."""
        return self.dataset.get_data_info(self._wrapped_index(idx))

    def get_cat_ids(self, idx: int) -> list[int]:
        """The category ids of sample ``idx`` (for class-balanced use)."""
        return self.dataset.get_cat_ids(self._wrapped_index(idx))

    def __getitem__(self, idx: int) -> Any:
        return self.dataset[self._wrapped_index(idx)]

    def __len__(self) -> int:
        self.full_init()
        return self._len

    def __repr__(self) -> str:
        stop = self.start + self._len if self._fully_initialized \
            else self.stop
        return (f'SubsetDataset([{self.start}, {stop}) of '
                f'{type(self.dataset).__name__})')
