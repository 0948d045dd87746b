"""Every shipped training config trains on synthetic data of its kind.

Each config under ``configs/`` that defines a trainable model and a
``train_dataloader`` runs through ``tools/train.py`` (its ``main``, in this
process: a subprocess per config would spend most of the time importing)
with ``--cfg-options`` that point every data root at data written here
(Fashion-MNIST-format files, or a tiny ImageNet-style folder of JPEGs with
``meta/*.txt`` lists), shrink the batches to 2 and the schedule to one
epoch of two training iterations, validate once on one batch, and run every
loader in the process. A key a config renamed, a type that no longer
builds, a base it lost, a file it names that is gone: the config fails
here, not after hours of a user's job.

A search config (with a ``search_loop``) runs its training part; the search
itself is covered by the method's own tests. The ImageNet configs keep
their 224x224 pipelines (the images are small, so decoding is cheap); a
differentiable search config trains its architecture from the first epoch
(no warm-up), so both kinds of step run.

Every config file, the ``_base_/`` fragments included, is also loaded on
its own (``test_config_resolves``, cheap): a base that is gone, two bases
that define one key, a ``_base_.x`` that no base defines or a ``_delete_``
left with nothing to delete fails there.

Not run here, by design:

- ``configs/_base_/``: fragments, not runnable alone.
- configs without a ``train_dataloader`` or a ``model`` (``model_zoo/``:
  architectures for the analysis tools; ``compare/``: the settings of
  ``tools/compare.py``, whose runs are tested in ``tests/test_compare.py``).
- ``configs/your_data/``: wrappers of mmpretrain's own configs through
  ``_base_ = ['mmpretrain::...']``, which mmengine resolves with
  pkg_resources (gone with setuptools >= 81); ``tests/test_your_config.py``
  runs each of them end to end on its own data.
"""
from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

from mmchansearch.channel_cfg import ChannelConfig, save_channel_cfg
from mmchansearch.fileio import install_checkpoint_io
from mmchansearch.latency_table import LatencyTable
from mmchansearch.models.backbones.rexnet import block_names
from mmchansearch.registry import MODELS
from mmchansearch.supernet import build_search_space, build_supernet

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / 'configs'
BATCH = 2
# MobileNetV2 at 32x32 ends on 1x1 maps: batch norm over 2 samples there
# is degenerate enough that the first architecture step of DMaskingNAS
# yields NaN alphas (which the search's own check reports); 4 is enough.
BATCH_SIZES = {'dmasking_mbv2_1.0x_search_1xb64_fashion-mnist.py': 4}
NOT_RUN = {
    '_base_': 'fragments of other configs',
    'your_data': 'mmpretrain:: bases need pkg_resources; covered by '
                 'tests/test_your_config.py',
}


def _shipped_configs() -> Iterator[Path]:
    for path in sorted(CONFIGS.rglob('*.py')):
        if path.relative_to(CONFIGS).parts[0] in NOT_RUN:
            continue
        try:
            cfg = Config.fromfile(path)
        except Exception:  # the config's own test reports the error
            yield path
            continue
        if cfg.get('model') is None or cfg.get('train_dataloader') is None:
            continue  # not a training config (model_zoo/, compare/)
        yield path


SHIPPED = list(_shipped_configs())
TRAIN_TOOL = REPO / 'tools' / 'train.py'
# every config file but your_data/'s (see NOT_RUN), fragments included
ALL_CONFIGS = [p for p in sorted(CONFIGS.rglob('*.py'))
               if p.relative_to(CONFIGS).parts[0] != 'your_data']
# settings merged into other configs later, `_delete_` and all
MERGED_LATER = {'compare'}


def _keys(value) -> Iterator[str]:
    """Every dict key in a config value, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _keys(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _keys(item)


@pytest.mark.parametrize(
    'config', ALL_CONFIGS,
    ids=[str(p.relative_to(CONFIGS)) for p in ALL_CONFIGS])
def test_config_resolves(config):
    """The file loads with its bases, and no `_delete_` is left over:
    mmengine drops one only where a base has the key it replaces."""
    cfg = Config.fromfile(config).to_dict()
    if config.relative_to(CONFIGS).parts[0] not in MERGED_LATER:
        assert '_delete_' not in set(_keys(cfg))


def test_the_configs_are_discovered():
    """The discovery finds every training config family (an empty or
    short list would pass every parametrized test below)."""
    folders = {p.relative_to(CONFIGS).parts[0] for p in SHIPPED}
    assert folders == {'autoslim', 'baselines', 'dmasking', 'dnas',
                       'network_adjustment', 'rexnet'}
    assert len(SHIPPED) >= 30
    assert {p.relative_to(CONFIGS).parts[0] for p in ALL_CONFIGS} >= \
        folders | {'_base_', 'compare', 'model_zoo'}


# ------------------------------------------------------------------- data
# A loader's datasets, from the outside in: (dotted key, dataset config).
def _datasets(key: str, dataset) -> Iterator[tuple[str, dict]]:
    while isinstance(dataset, dict):
        yield key, dataset
        if 'datasets' in dataset:
            raise AssertionError(f'{key}: a dataset of several datasets; '
                                 'teach this test to fill each of them')
        key, dataset = f'{key}.dataset', dataset.get('dataset')


def _loaders(cfg: Config, batch: int) -> Iterator[tuple[str, dict, int]]:
    """(dotted key, loader config, samples it needs) of the loaders a
    training run builds: two training (and architecture) batches, one
    validation batch."""
    yield 'train_dataloader', cfg.train_dataloader, 2 * batch
    arch = (cfg.get('train_cfg') or {}).get('arch_dataloader')
    if arch is not None:
        yield 'train_cfg.arch_dataloader', arch, 2 * batch
    if cfg.get('val_cfg') is not None and cfg.get('val_dataloader'):
        yield 'val_dataloader', cfg.val_dataloader, batch


def _source(dataset: dict) -> tuple[str, str, str]:
    """(kind, part, list file) of the files a leaf dataset reads."""
    kind = dataset['type']
    if kind == 'FashionMNIST':  # test_mode, not split, picks the files
        return kind, 'test' if dataset.get('test_mode') else 'train', ''
    if kind == 'ImageNet':
        split = dataset.get('split') or 'train'
        return kind, split, dataset.get('ann_file') or f'meta/{split}.txt'
    raise AssertionError(f'no synthetic data of kind {kind!r}: write some '
                         'in tests/test_shipped_configs.py')


def _data_options(cfg: Config, root: Path,
                  batch: int) -> tuple[list[str], dict]:
    """``--cfg-options`` pointing every loader at ``root``, and the number
    of samples each data source must hold.

    A loader whose dataset is a ``SubsetDataset`` gets its own window of
    the source (the windows of one source follow each other); a loader
    that reads a whole source must be its only reader.
    """
    options, windows, whole = [], {}, {}
    for key, loader, samples in _loaders(cfg, batch):
        options += [f'{key}.batch_size={batch}', f'{key}.num_workers=0',
                    f'{key}.persistent_workers=False']
        chain = list(_datasets(f'{key}.dataset', loader['dataset']))
        leaf_key, leaf = chain[-1]
        source = _source(leaf)
        options.append(f'{leaf_key}.data_root={root}')
        subsets = [(k, d) for k, d in chain if d['type'] == 'SubsetDataset']
        assert len(subsets) <= 1, f'{key}: nested SubsetDatasets'
        if subsets:
            start = windows.get(source, 0)
            windows[source] = start + samples
            options += [f'{subsets[0][0]}.start={start}',
                        f'{subsets[0][0]}.stop={start + samples}']
        else:
            assert source not in whole, f'{key}: {source} read twice'
            whole[source] = samples
    for source in whole:
        assert source not in windows, \
            f'{source} is read whole and in windows: the whole reader ' \
            'would train more than two iterations'
    return options, {**windows, **whole}


def _write_fashion_mnist(root: Path, sizes: dict, make_fashion_mnist):
    make_fashion_mnist(root, sizes.get(('FashionMNIST', 'train', ''), 1),
                       sizes.get(('FashionMNIST', 'test', ''), 1))


def _write_imagenet(root: Path, sizes: dict) -> None:
    """ImageNet's layout: ``{train,val}/<class>/*.JPEG`` (48x48 noise)
    and the lists ``meta/*.txt`` (``<class>/<file> <label>``)."""
    rng = np.random.default_rng(0)
    for (_, split, ann_file), count in sizes.items():
        lines = []
        for i in range(count):
            name = f'n{i % 2:08d}/{Path(ann_file).stem}_{i}.JPEG'
            path = root / split / name
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (48, 48, 3),
                                         dtype=np.uint8)).save(path)
            lines.append(f'{name} {i % 2}')
        (root / ann_file).parent.mkdir(parents=True, exist_ok=True)
        (root / ann_file).write_text('\n'.join(lines) + '\n')


# ------------------------------------------------------- files a model needs
def _model_options(cfg: Config, tmp: Path) -> list[str]:
    """Options giving a model the files its config leaves to the user:
    the channel_cfg a retraining config trains, the blocks of a DNAS
    result, the latency table of a latency-bound DNAS search (one made-up
    entry per op of the space: measuring the ops is not what is tested)."""
    model = cfg.model
    options = []
    if model.get('latency_table'):  # even if one was built here
        ops = build_search_space(cfg).latency_ops()
        path = tmp / 'latency.json'
        # a CUDA table is checked against the GPU's name: this one is for
        # the CPU the test runs on
        LatencyTable({op.signature: 0.1 for op in ops},
                     dict(device='cpu')).save(path)
        options += [f'model.latency_table={path}',
                    'model.latency_device=cpu']
    if 'channel_cfgs' in model and not model.channel_cfgs:
        path = tmp / 'subnet.yaml'
        save_channel_cfg(_a_result(cfg), path)
        options.append(f'model.channel_cfgs=[{path}]')
    return options


def _a_result(cfg: Config) -> ChannelConfig:
    """A search result for a retraining config: the smallest subnet of its
    groups, or, for a backbone built from blocks (FBNet DNAS, ReXNet), a
    blocks: choice (every layer's first block / the default widths)."""
    backbone = cfg.model.architecture.get('backbone') or {}
    if not getattr(MODELS.get(backbone.get('type', '')),
                   'CHANNEL_GROUPS_FOLLOW_BLOCKS', False):
        mutator = build_supernet(cfg).mutator
        return ChannelConfig(
            {g: mutator.candidates(g)[0] for g in mutator.max_widths})
    space = MODELS.build(backbone)
    if hasattr(space, 'block_channels'):  # ReXNet, plain inverted bottlenecks
        return ChannelConfig({}, blocks={
            f'backbone.{name}': width for name, width in zip(
                block_names(space.stage_blocks), space.block_channels)})
    return ChannelConfig({}, blocks={
        f'backbone.{name}': 'k3_e1' for name in space.choice_layers()})


def _schedule_options(cfg: Config) -> list[str]:
    """One epoch, validated at its end, logged every iteration."""
    options = ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
               'default_hooks.logger.interval=1']
    if 'max_epochs' in cfg:
        options.append('max_epochs=1')
    if 'warmup_epochs' in cfg.train_cfg:
        options.append('train_cfg.warmup_epochs=0')
    if 'calibrate_bn_batches' in (cfg.get('val_cfg') or {}):
        options.append('val_cfg.calibrate_bn_batches=1')
    return options


def _train_main():
    spec = importlib.util.spec_from_file_location('_train_tool', TRAIN_TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.mark.parametrize(
    'config', SHIPPED, ids=[str(p.relative_to(CONFIGS)) for p in SHIPPED])
def test_config_trains_two_iterations_and_validates(
        config, tmp_path, monkeypatch, make_fashion_mnist):
    cfg = Config.fromfile(config)
    root = tmp_path / 'data'
    options, sizes = _data_options(
        cfg, root, BATCH_SIZES.get(config.name, BATCH))
    kinds = {source[0] for source in sizes}
    if 'FashionMNIST' in kinds:
        _write_fashion_mnist(root, sizes, make_fashion_mnist)
    if 'ImageNet' in kinds:
        _write_imagenet(root, sizes)
    options += _model_options(cfg, tmp_path) + _schedule_options(cfg)
    work_dir = tmp_path / 'work'
    monkeypatch.setattr(sys, 'argv', [
        str(TRAIN_TOOL), str(config), '--work-dir', str(work_dir),
        '--cfg-options', *options])
    monkeypatch.chdir(REPO)  # configs name files relative to the repo
    install_checkpoint_io()
    _train_main()()
    (scalars, ) = work_dir.glob('*/vis_data/scalars.json')
    records = [json.loads(line) for line in scalars.read_text().splitlines()]
    train = [r for r in records if 'lr' in r or 'loss' in r]
    val = [r for r in records if any('accuracy/top1' in k for k in r)]
    assert [r['iter'] for r in train] == [1, 2], records
    assert len(val) == 1, records
    assert (work_dir / 'epoch_1.pth').is_file()
