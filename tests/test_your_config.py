"""Your classifier config on your data, through the tools users type.

The AutoSlim wrappers of ``configs/your_data/`` (the configs that
``docs/your_model_your_data.md`` shows) around mmpretrain's own shipped
``resnet/resnet18_8xb16_cifar10.py`` and
``mobilenet_v2/mobilenet-v2_8xb32_in1k.py``: each trains a supernet for two
iterations, searches a few steps on a tiny held-out set, retrains a searched
subnet for two iterations, tests and exports it, on data written here
(CIFAR-10 batches; an image folder of JPEGs and PNGs, read at 32x32).
"""
from __future__ import annotations

import pickle
import re
from pathlib import Path

import mmpretrain
import numpy as np
import pytest
import torch
from PIL import Image

from mmchansearch.channel_cfg import load_channel_cfg

REPO = Path(__file__).resolve().parents[1]
YOUR_DATA = REPO / 'configs' / 'your_data'
MMPRETRAIN_CONFIGS = Path(mmpretrain.__file__).parent / '.mim' / 'configs'
# ``_base_ = ['mmpretrain::X']``: mmengine 0.10.7 resolves it with
# pkg_resources, which setuptools >= 81 lacks; the copies give the path.
PACKAGE_BASE = re.compile(r"'mmpretrain::([^']+)'")

# training images 0..31 train the supernet, 32..39 are held out
NUM_TRAIN, SUPERNET_IMAGES, NUM_TEST = 40, 32, 16
NUM_CLASSES = 5  # image folder


def _copy_configs(prefix: str, out: Path) -> dict[str, Path]:
    """The shipped wrappers ``{prefix}_{stage}_*.py`` written to ``out``,
    each unchanged but for the base: mmpretrain's file, by absolute path."""
    out.mkdir()
    paths = {}
    for stage in ('supernet', 'search', 'subnet'):
        (source, ) = YOUR_DATA.glob(f'{prefix}_{stage}_*.py')
        text = source.read_text(encoding='utf-8')
        if stage == 'supernet':
            assert len(PACKAGE_BASE.findall(text)) == 1
            base = MMPRETRAIN_CONFIGS / PACKAGE_BASE.search(text).group(1)
            assert base.is_file(), base
            text = PACKAGE_BASE.sub(repr(str(base)), text)
        paths[stage] = out / source.name
        paths[stage].write_text(text, encoding='utf-8')
    return paths


# ------------------------------------------------------------------- data
def _images(count: int, size: int, seed: int) -> tuple[np.ndarray, list]:
    """``count`` HxWx3 uint8 images whose label is a bright row band."""
    rng = np.random.default_rng(seed)
    labels = [i % 10 for i in range(count)]
    images = rng.integers(0, 64, (count, size, size, 3), dtype=np.uint8)
    band = size // 10 or 1
    for image, label in zip(images, labels):
        image[label * band:(label + 1) * band] = 255
    return images, labels


def _write_cifar10(root: Path) -> Path:
    """CIFAR-10 python batches in mmpretrain's layout: 5 training batches
    of 8 images, a test batch of 16."""
    folder = root / 'cifar-10-batches-py'
    folder.mkdir(parents=True)
    images, labels = _images(NUM_TRAIN, 32, seed=0)
    per_batch = NUM_TRAIN // 5
    batches = {f'data_batch_{i + 1}': slice(i * per_batch,
                                            (i + 1) * per_batch)
               for i in range(5)}
    test_images, test_labels = _images(NUM_TEST, 32, seed=1)
    for name, part in batches.items():
        _write_cifar_batch(folder / name, images[part], labels[part])
    _write_cifar_batch(folder / 'test_batch', test_images, test_labels)
    return root


def _write_cifar_batch(path: Path, images: np.ndarray, labels: list) -> None:
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # CHW rows
    with open(path, 'wb') as f:
        pickle.dump({'data': data, 'labels': list(labels)}, f)


def _write_image_folder(root: Path) -> Path:
    """``train/<class>/`` (8 JPEGs a class) and ``val/<class>/`` (2 PNGs a
    class), 40x40 images of 5 classes."""
    for split, per_class, ext, seed in (('train', 8, 'jpg', 0),
                                        ('val', 2, 'png', 1)):
        images, _ = _images(NUM_CLASSES * per_class, 40, seed)
        for i, image in enumerate(images):
            label = i % NUM_CLASSES
            folder = root / split / f'class_{label}'
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f'{i}.{ext}')
    return root


# --------------------------------------------------------------- options
def _cifar_data(root: Path) -> list[str]:
    """Where the CIFAR-10 files are; ``UncheckedCIFAR10``: the files are
    not the official release, whose md5 mmpretrain's ``CIFAR10`` checks."""
    options = []
    for dataset in ('train_dataloader.dataset.dataset',
                    'val_dataloader.dataset', 'test_dataloader.dataset'):
        options += [f'{dataset}.data_root={root}',
                    f'{dataset}.type=UncheckedCIFAR10']
    return options


def _cifar_heldout(root: Path) -> list[str]:
    dataset = 'search_loop.dataloader.dataset'
    return [f'{dataset}.dataset.data_root={root}',
            f'{dataset}.dataset.type=UncheckedCIFAR10',
            f'{dataset}.start={SUPERNET_IMAGES}']


def _folder_data(root: Path) -> list[str]:
    """The image folder, its classes, and 32x32 inputs."""
    options = [
        f'train_dataloader.dataset.dataset.data_root={root}',
        'train_dataloader.dataset.dataset.pipeline.1.scale=32',
        f'model.architecture.head.num_classes={NUM_CLASSES}',
        f'data_preprocessor.num_classes={NUM_CLASSES}',
        'model.mutator.input_shape=(3,32,32)',
    ]
    for dataset in ('val_dataloader.dataset', 'test_dataloader.dataset'):
        options += [f'{dataset}.data_root={root}',
                    f'{dataset}.pipeline.1.scale=36',
                    f'{dataset}.pipeline.2.crop_size=32']
    return options


def _folder_heldout(root: Path) -> list[str]:
    dataset = 'search_loop.dataloader.dataset'
    return [f'{dataset}.dataset.data_root={root}',
            f'{dataset}.dataset.pipeline.1.scale=36',
            f'{dataset}.dataset.pipeline.2.crop_size=32',
            f'{dataset}.start={SUPERNET_IMAGES}']


def _small_run() -> list[str]:
    """Two training iterations (32 images at batch 16), one process."""
    return [
        f'train_dataloader.dataset.stop={SUPERNET_IMAGES}',
        'train_dataloader.batch_size=16', 'train_dataloader.num_workers=0',
        'val_dataloader.batch_size=16', 'val_dataloader.num_workers=0',
        'test_dataloader.batch_size=16', 'test_dataloader.num_workers=0',
        'train_cfg.max_epochs=1', 'default_hooks.logger.interval=1',
    ]


def _small_search(target: float) -> list[str]:
    """A few greedy steps: one target just below the full network."""
    return ['search_loop.dataloader.batch_size=8',
            'search_loop.dataloader.num_workers=0',
            'search_loop.calibrate_bn_batches=1',
            f'search_loop.targets=[{target}]']


CASES = {
    # prefix of the shipped configs, data writer, data and held-out options,
    # the search target (the full networks: 555M FLOPs; 6.12M at 32x32)
    'cifar10': ('autoslim_resnet18-cifar', _write_cifar10, _cifar_data,
                _cifar_heldout, 530e6),
    'image_folder': ('autoslim_mbv2_1.0x', _write_image_folder,
                     _folder_data, _folder_heldout, 6.0e6),
}


@pytest.fixture(scope='module', params=sorted(CASES))
def pipeline(request, tmp_path_factory, run_tool):
    """Supernet training, search, subnet retraining of one case, once."""
    prefix, write_data, data, heldout, target = CASES[request.param]
    tmp = tmp_path_factory.mktemp(request.param)
    configs = _copy_configs(prefix, tmp / 'configs')
    root = write_data(tmp / 'data')
    options = data(root) + _small_run()
    supernet_dir = tmp / 'supernet'
    run_tool('tools/train.py', configs['supernet'], '--work-dir', supernet_dir,
             '--cfg-options', *options)
    checkpoint = (supernet_dir / 'last_checkpoint').read_text().strip()
    search_dir = tmp / 'search'
    run_tool('tools/search.py', configs['search'], checkpoint, '--work-dir',
             search_dir, '--cfg-options',
             *options, *heldout(root), *_small_search(target))
    (channel_cfg, ) = search_dir.glob('subnet_*.yaml')
    subnet_options = [*options, f'model.channel_cfgs={channel_cfg}']
    subnet_dir = tmp / 'subnet'
    run_tool('tools/train.py', configs['subnet'], '--work-dir', subnet_dir,
             '--cfg-options', *subnet_options)
    return dict(case=request.param, tmp=tmp, configs=configs, root=root,
                options=options, channel_cfg=channel_cfg,
                subnet_options=subnet_options,
                subnet=(subnet_dir / 'epoch_1.pth'))


def test_search_meets_its_target(pipeline):
    """The searched subnet is narrower than the supernet, within budget."""
    cfg = load_channel_cfg(pipeline['channel_cfg'])
    target = CASES[pipeline['case']][4]
    assert cfg.meta['flops'] <= target, cfg.meta
    assert cfg.channels


def test_retrained_subnet_tests_and_exports(pipeline, run_tool):
    tmp, configs = pipeline['tmp'], pipeline['configs']
    metrics = tmp / 'test.json'
    run_tool('tools/test.py', configs['subnet'], pipeline['subnet'],
             '--work-dir', tmp / 'test', '--out', metrics, '--cfg-options',
             *pipeline['subnet_options'])
    assert 'accuracy/top1' in metrics.read_text()
    static = tmp / 'static.pth'
    # the checkpoint's meta names its channel_cfg
    run_tool('tools/export_subnet.py', configs['subnet'], '--checkpoint',
             pipeline['subnet'], '-o', static, '--cfg-options',
             *pipeline['options'])
    state = torch.load(static, weights_only=False)['state_dict']
    assert any(key.startswith('backbone.') for key in state)


def test_the_doc_shows_the_shipped_configs():
    """docs/your_model_your_data.md shows every config of
    configs/your_data/ as it is (the configs the tests above run)."""
    doc = (REPO / 'docs' / 'your_model_your_data.md').read_text('utf-8')
    shown = dict(re.findall(
        r'`(configs/your_data/[^`]+\.py)`:\n\n```python\n(.*?)```', doc,
        re.DOTALL))
    shipped = {str(path.relative_to(REPO)): path.read_text('utf-8')
               for path in YOUR_DATA.glob('*.py')}
    assert shown == shipped


def _error_line(result) -> str:
    """The one ``error:`` line of a refused command (no traceback)."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert 'Traceback' not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines()
              if line.startswith('error: ')]
    assert len(errors) == 1, result.stderr[-3000:]
    return errors[0]


def test_missing_data_is_one_error_line(pipeline, run_tool):
    """CIFAR-10: a data root without the files; image folder: no data root
    at all. Both fail before training, with one line naming the key."""
    tmp = pipeline['tmp']
    if pipeline['case'] == 'cifar10':
        empty = tmp / 'empty'
        empty.mkdir()
        options = _cifar_data(empty) + _small_run()
        expected = 'data_batch_1: no such file'
    else:
        options = _folder_data(tmp / 'missing') + _small_run()
        expected = (f"train_dataloader.dataset.dataset.data_root="
                    f"'{tmp / 'missing'}': no such directory")
    result = run_tool('tools/train.py', pipeline['configs']['supernet'],
                      '--work-dir', tmp / 'refused', '--cfg-options',
                      *options, check=False)
    assert expected in _error_line(result)
