"""Transforms that mmcv and mmpretrain do not provide."""
from __future__ import annotations

import numpy as np
from mmcv.transforms import BaseTransform

from ..errors import ConfigError
from ..registry import TRANSFORMS


@TRANSFORMS.register_module()
class GrayToRGB(BaseTransform):
    """Replicates a grayscale image into three identical channels.

    Lets a grayscale dataset (MNIST, Fashion-MNIST) feed models whose stem
    expects three input channels, such as mmpretrain's MobileNetV2. mmcv's
    ``RandomGrayscale`` only goes the other way, and ``PackInputs`` would
    keep a single channel.

    Required keys: ``img`` (HxW, HxWx1 or HxWx3 ``np.ndarray``).
    Modified keys: ``img`` (HxWx3, same dtype; a three-channel input is
    returned unchanged).
    """

    def transform(self, results: dict) -> dict:
        """Replaces ``results['img']`` with its three-channel version.

        Args:
            results: the sample dict of the pipeline.

        Returns:
            The same dict, with ``img`` of shape HxWx3.
        """
        img = results['img']
        if img.ndim == 2:
            img = img[..., None]
        if img.ndim != 3 or img.shape[2] not in (1, 3):
            raise ConfigError(
                f'GrayToRGB: img has shape {tuple(img.shape)}; expected a '
                'grayscale HxW or HxWx1 image (or HxWx3, left unchanged). '
                'Remove GrayToRGB from the pipeline of this dataset.')
        if img.shape[2] == 1:
            results['img'] = np.repeat(img, 3, axis=2)
        return results
