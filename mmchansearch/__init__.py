"""mmchansearch: channel-number search for OpenMMLab classifiers."""
from .version import __version__

# Tested ranges of the libraries the toolbox builds on: [min, max).
_COMPATIBLE = {
    'mmengine': ('0.10.0', '0.11.0'),
    'mmpretrain': ('1.2.0', '1.3.0'),
}


def _check_versions() -> None:
    """Fails early, with the fix, when a dependency has an untested version."""
    from importlib import import_module

    from mmengine.utils import digit_version
    for package, (low, high) in _COMPATIBLE.items():
        version = import_module(package).__version__
        if not digit_version(low) <= digit_version(version) < digit_version(
                high):
            raise ImportError(
                f'mmchansearch {__version__} needs {package}>={low},<{high}, '
                f'found {package}=={version}; run '
                f'`pip install -r requirements.txt` to install the pinned '
                f'versions.')


_check_versions()

# atomic checkpoint writes; the oneDNN primitive cache size
from . import fileio, memory_format  # noqa: E402,F401

__all__ = ['__version__']
