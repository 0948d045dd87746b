"""Optimizer wrapper constructors."""
from .separate import SeparateOptimWrapperConstructor

__all__ = ['SeparateOptimWrapperConstructor']
