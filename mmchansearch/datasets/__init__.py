"""Dataset wrappers and transforms registered in ``DATASETS``/``TRANSFORMS``.

Every mmpretrain dataset and transform is usable as well: the registries of
:mod:`mmchansearch.registry` fall back to mmpretrain's.
"""
from .cifar import UncheckedCIFAR10
from .subset import SubsetDataset
from .transforms import GrayToRGB

__all__ = ['GrayToRGB', 'SubsetDataset', 'UncheckedCIFAR10']
