"""The mmpretrain classifiers the benchmarks measure, as supernets, the
random batches they are fed and the ``--models`` option that picks them.

Each benchmark script imports this module from its own folder (running
``python benchmarks/bench_X.py`` puts ``benchmarks/`` on ``sys.path``).
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch
from mmengine.config import Config
from mmpretrain.structures import DataSample

from mmchansearch.models.algorithms import ChannelSupernet
from mmchansearch.supernet import build_supernet


def _resnet(depth: int, feature_channels: int) -> dict:
    return dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet', depth=depth, num_stages=4,
                      out_indices=(3, ), style='pytorch'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=1000,
                  in_channels=feature_channels,
                  loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))


CLASSIFIERS: dict[str, dict] = {
    'MobileNetV2-1.0x': dict(
        type='ImageClassifier',
        backbone=dict(type='MobileNetV2', widen_factor=1.0),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=1000, in_channels=1280,
                  loss=dict(type='CrossEntropyLoss', loss_weight=1.0))),
    'ResNet-18': _resnet(18, 512),
    'ResNet-50': _resnet(50, 2048),
}


def models_parser(description: str,
                  default_models: Sequence[str]) -> argparse.ArgumentParser:
    """An argument parser whose ``--help`` shows the defaults, with
    ``--models``: which of :data:`CLASSIFIERS` to measure.

    Args:
        description: the parser's description.
        default_models: the models measured without ``--models``.

    Returns:
        The parser, for the benchmark to add its own options.
    """
    parser = argparse.ArgumentParser(
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--models', nargs='+', default=list(default_models),
                        choices=list(CLASSIFIERS), help='models to measure')
    return parser


def build_classifier_supernet(name: str, input_size: int) -> ChannelSupernet:
    """The supernet of one of :data:`CLASSIFIERS`, traced at a square input.

    Args:
        name: a key of :data:`CLASSIFIERS`.
        input_size: height and width of the input images.

    Returns:
        The supernet, every group at its max width.
    """
    cfg = Config(dict(model=CLASSIFIERS[name]))
    return build_supernet(cfg, input_shape=(3, input_size, input_size))


def random_batches(count: int, batch_size: int, input_size: int,
                   num_classes: int = 10) -> list[dict]:
    """``count`` dataloader-style batches of random uint8 images (seeded),
    sample i labelled i mod ``num_classes``."""
    gen = torch.Generator().manual_seed(0)
    size = (3, input_size, input_size)
    return [dict(inputs=[torch.randint(0, 255, size, generator=gen,
                                       dtype=torch.uint8)
                         for _ in range(batch_size)],
                 data_samples=[DataSample().set_gt_label(i % num_classes)
                               for i in range(batch_size)])
            for _ in range(count)]
