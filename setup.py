"""Installs mmchansearch; dependencies are pinned in requirements/."""
import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read_requirements(name: str) -> list[str]:
    """Requirement lines of requirements/NAME.txt, comments dropped."""
    with open(os.path.join(HERE, 'requirements', f'{name}.txt')) as f:
        return [line.strip() for line in f
                if line.strip() and not line.startswith('#')]


def read_version() -> str:
    """The version string from mmchansearch/version.py."""
    scope: dict = {}
    with open(os.path.join(HERE, 'mmchansearch', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='mmchansearch',
    version=read_version(),
    description='Channel-number search for OpenMMLab classifiers',
    packages=find_packages(exclude=('tests', 'tools', 'configs')),
    python_requires='>=3.11',
    install_requires=read_requirements('runtime'),
    extras_require={
        'optional': read_requirements('optional'),
        'tests': read_requirements('tests'),
    },
)
