"""Algorithms and search-space backbones registered in ``MODELS``."""
