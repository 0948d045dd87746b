"""CIFAR-10 files in mmpretrain's layout, whatever images they hold."""
from __future__ import annotations

from mmengine.fileio import exists, join_path
from mmpretrain.datasets import CIFAR10

from ..errors import ConfigError
from ..registry import DATASETS


@DATASETS.register_module()
class UncheckedCIFAR10(CIFAR10):
    """mmpretrain's ``CIFAR10`` without the checksums of the official files.

    mmpretrain's ``CIFAR10`` accepts only the files of the official release
    (it compares each file's md5) and downloads them when the check fails.
    This reads any files in the same layout and format, e.g. a subset of
    CIFAR-10, your own 32x32 images written as CIFAR-10 batches, or test
    data: ``<data_root>/cifar-10-batches-py/`` holding ``data_batch_1`` ..
    ``data_batch_5`` and ``test_batch`` (pickled dicts with ``data``, N x
    3072 uint8, and ``labels``). It never downloads. Use it in place of
    ``type='CIFAR10'``, with the same arguments.

    Raises:
        ConfigError: a file of the layout is missing.
    """

    train_list = [[name, None] for name, _ in CIFAR10.train_list]
    test_list = [[name, None] for name, _ in CIFAR10.test_list]
    meta = dict(CIFAR10.meta, md5=None)

    def __init__(self, *args, download: bool = False, **kwargs) -> None:
        super().__init__(*args, download=False, **kwargs)

    def _check_integrity(self) -> bool:
        root = self.data_prefix['root']
        for name, _ in self.train_list + self.test_list:
            path = join_path(root, self.base_folder, name)
            if not exists(path):
                raise ConfigError(
                    f'UncheckedCIFAR10: {path}: no such file; expected '
                    f'{", ".join(n for n, _ in self.train_list)} and '
                    f'{self.test_list[0][0]} in {root}/{self.base_folder}.')
        return True
