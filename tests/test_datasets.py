"""GrayToRGB, SubsetDataset and the Fashion-MNIST dataset configs."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import BaseDataset
from mmengine.registry import init_default_scope

from mmchansearch.datasets import GrayToRGB, SubsetDataset
from mmchansearch.errors import ConfigError
from mmchansearch.registry import DATASETS, MODELS, TRANSFORMS

REPO = Path(__file__).resolve().parents[1]
FASHION_CFG = REPO / 'configs/_base_/datasets/fashion_mnist_bs64.py'
BASELINE_CFG = REPO / 'configs/baselines/mobilenet_v2_1xb64_fashion_mnist.py'
IMAGENET_CFG = REPO / 'configs/_base_/datasets/imagenet_bs256_autoslim.py'


@pytest.fixture(autouse=True)
def scope() -> None:
    init_default_scope('mmchansearch')


# --------------------------------------------------------------- GrayToRGB
@pytest.mark.parametrize('shape', [(5, 7), (5, 7, 1)])
def test_gray_to_rgb_replicates_the_channel(shape) -> None:
    img = np.arange(35, dtype=np.uint8).reshape(shape)
    out = GrayToRGB()(dict(img=img))['img']
    assert out.shape == (5, 7, 3) and out.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], img.reshape(5, 7))


def test_gray_to_rgb_keeps_color_images() -> None:
    img = np.random.default_rng(0).integers(0, 256, (4, 4, 3), np.uint8)
    np.testing.assert_array_equal(GrayToRGB()(dict(img=img))['img'], img)


@pytest.mark.parametrize('shape', [(4, 4, 2), (2, 4, 4, 1)])
def test_gray_to_rgb_rejects_other_shapes(shape) -> None:
    with pytest.raises(ConfigError, match=r'shape \(.*\); expected'):
        GrayToRGB()(dict(img=np.zeros(shape, np.uint8)))


def test_fashion_pipeline_gives_3x32x32() -> None:
    cfg = Config.fromfile(FASHION_CFG)
    pipeline = [TRANSFORMS.build(t) for t in cfg.train_pipeline]
    results = dict(img=np.zeros((28, 28), np.uint8), gt_label=3)
    for transform in pipeline:
        results = transform(results)
    assert results['inputs'].shape == (3, 32, 32)


# ----------------------------------------------------------- SubsetDataset
class _Toy(BaseDataset):
    """Ten samples; sample i has ``value`` i and label i % 3."""

    METAINFO = dict(classes=('a', 'b', 'c'))
    loads = 0

    def load_data_list(self) -> list[dict]:
        type(self).loads += 1
        return [dict(value=i, gt_label=i % 3) for i in range(10)]

    def get_cat_ids(self, idx: int) -> list[int]:
        return [self.get_data_info(idx)['gt_label']]


DATASETS.register_module(name='_ToySubsetTest', module=_Toy, force=True)


def toy(**kwargs) -> _Toy:
    return _Toy(serialize_data=False, **kwargs)


@pytest.mark.parametrize('start, stop, values', [
    (0, 10, list(range(10))),
    (2, 5, [2, 3, 4]),
    (7, None, [7, 8, 9]),
    (9, 10, [9]),
])
def test_subset_keeps_the_range(start, stop, values) -> None:
    subset = SubsetDataset(toy(), start, stop)
    assert len(subset) == len(values)
    assert [subset[i]['value'] for i in range(len(subset))] == values
    assert [subset.get_data_info(i)['value']
            for i in range(len(subset))] == values
    assert subset[-1]['value'] == values[-1]
    assert [subset.get_cat_ids(i) for i in range(len(subset))] == [
        [v % 3] for v in values]


def test_subset_index_out_of_range() -> None:
    subset = SubsetDataset(toy(), 2, 5)
    with pytest.raises(IndexError):
        subset[3]
    assert [s['value'] for s in subset] == [2, 3, 4]


def test_subset_from_config_and_metainfo() -> None:
    subset = DATASETS.build(dict(
        type='SubsetDataset', start=8,
        dataset=dict(type='_ToySubsetTest', serialize_data=False)))
    assert isinstance(subset, SubsetDataset)
    assert [s['value'] for s in subset] == [8, 9]
    assert subset.metainfo['classes'] == ('a', 'b', 'c')
    subset.metainfo['classes'] = ()  # a copy: the subset is not changed
    assert subset.metainfo['classes'] == ('a', 'b', 'c')


def test_subset_lazy_init() -> None:
    before = _Toy.loads
    subset = SubsetDataset(toy(lazy_init=True), 3, 20, lazy_init=True)
    assert _Toy.loads == before
    assert 'SubsetDataset([3, 20) of _Toy)' == repr(subset)
    with pytest.raises(ConfigError, match=r'\[3, 20\) does not fit'):
        subset.full_init()
    assert _Toy.loads == before + 1


def test_subset_wraps_a_subset() -> None:
    inner = SubsetDataset(toy(), 2, 9)
    assert [s['value'] for s in SubsetDataset(inner, 1, 3)] == [3, 4]


@pytest.mark.parametrize('start, stop, match', [
    (-1, None, r'start=-1; expected an integer >= 0'),
    (5, 5, r'stop=5 with start=5; expected None or an integer > 5'),
    (5, 2, r'stop=2 with start=5'),
    (0, 11, r'range \[0, 11\) does not fit the wrapped _Toy of 10 samples'
            r'; expected 0 <= start < stop <= 10'),
    (10, None, r'range \[10, None\) does not fit'),
    (1.5, None, r'start=1.5'),
])
def test_subset_rejects_bad_ranges(start, stop, match) -> None:
    with pytest.raises(ConfigError, match=match):
        SubsetDataset(toy(), start, stop)


# ------------------------------------------------------- dataset configs
def write_idx(path: Path, data: np.ndarray) -> None:
    header = struct.pack(f'>{1 + data.ndim}I', 0x0800 | data.ndim,
                         *data.shape)
    path.write_bytes(header + data.astype(np.uint8).tobytes())


@pytest.fixture
def fake_fashion_mnist(tmp_path: Path) -> Path:
    """Uncompressed IDX files: 6 train images of 1s, 4 test images of 2s."""
    for prefix, n, value in (('train', 6, 1), ('t10k', 4, 2)):
        write_idx(tmp_path / f'{prefix}-images-idx3-ubyte',
                  np.full((n, 28, 28), value))
        write_idx(tmp_path / f'{prefix}-labels-idx1-ubyte',
                  np.arange(n) % 10)
    return tmp_path


@pytest.mark.parametrize('path', [FASHION_CFG, BASELINE_CFG])
def test_fashion_val_and_test_use_test_files(path: Path) -> None:
    cfg = Config.fromfile(path)
    train = cfg.train_dataloader.dataset
    assert train.split == 'train' and not train.get('test_mode', False)
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        assert loader.dataset.test_mode is True
        assert loader.dataset.split == 'test'
        assert loader.dataset.download is False
    assert train.download is False


def test_fashion_config_reads_the_right_files(
        fake_fashion_mnist: Path) -> None:
    cfg = Config.fromfile(FASHION_CFG)
    built = {}
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset_cfg = cfg[key].dataset
        dataset_cfg.data_root = str(fake_fashion_mnist)
        built[key] = DATASETS.build(dataset_cfg)
    assert len(built['train_dataloader']) == 6
    assert built['train_dataloader'][0]['inputs'].unique().tolist() == [1]
    for key in ('val_dataloader', 'test_dataloader'):
        assert len(built[key]) == 4
        sample = built[key][0]
        assert sample['inputs'].shape == (3, 32, 32)
        assert sample['inputs'].unique().tolist() == [2]


def test_fashion_heldout_split(fake_fashion_mnist: Path) -> None:
    cfg = Config.fromfile(FASHION_CFG)
    train = dict(cfg.train_dataloader.dataset,
                 data_root=str(fake_fashion_mnist))
    fit = DATASETS.build(dict(type='SubsetDataset', dataset=train, stop=4))
    heldout = DATASETS.build(dict(
        type='SubsetDataset', start=4,
        dataset=dict(train, pipeline=cfg.test_pipeline)))
    assert len(fit) == 4 and len(heldout) == 2
    assert heldout[0]['data_samples'].gt_label.tolist() == [4]


def test_baseline_model_takes_the_pipeline_output() -> None:
    cfg = Config.fromfile(BASELINE_CFG)
    model_cfg = dict(cfg.model, data_preprocessor=dict(
        cfg.data_preprocessor, type='ClsDataPreprocessor'))
    model = MODELS.build(model_cfg).eval()
    batch = model.data_preprocessor(
        dict(inputs=[torch.zeros(3, 32, 32, dtype=torch.uint8)] * 2), False)
    with torch.no_grad():
        logits = model(batch['inputs'], mode='tensor')
    assert logits.shape == (2, 10)
    assert cfg.param_scheduler.end == cfg.train_cfg.max_epochs


def test_imagenet_pipelines_are_registered() -> None:
    cfg = Config.fromfile(IMAGENET_CFG)
    for pipeline in (cfg.train_pipeline, cfg.test_pipeline):
        for transform in pipeline:
            TRANSFORMS.build(transform)
    assert cfg.train_dataloader.batch_size == 256
    assert cfg.val_dataloader.dataset.split == 'val'


def test_imagenet_autoslim_stack_composes(tmp_path: Path) -> None:
    base = REPO / 'configs/_base_'
    # the schedule inherits its data (IMAGENET_CFG)
    stack = [base / 'models/mobilenet_v2_1.5x_imagenet.py',
             base / 'schedules/imagenet_bs2048_autoslim.py',
             base / 'default_runtime.py']
    path = tmp_path / 'stack.py'
    path.write_text(f'_base_ = {[str(p) for p in stack]!r}\n')
    cfg = Config.fromfile(path)
    assert cfg.model.head.in_channels == 1920
    assert cfg.model.head.loss.label_smooth_val == 0.1
    assert cfg.optim_wrapper.optimizer.nesterov is True
    assert cfg.param_scheduler.end == cfg.train_cfg.max_epochs == 300
    assert cfg.default_scope == 'mmchansearch'
