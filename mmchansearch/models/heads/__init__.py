"""Classification heads the published models need beyond mmpretrain's."""
from .dropout_linear import DropoutLinearClsHead

__all__ = ['DropoutLinearClsHead']
