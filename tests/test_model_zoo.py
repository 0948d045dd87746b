"""Coverage of the mmpretrain CNN zoo (docs/model_zoo.md).

Every shipped config below is built, analyzed, counted and exported at a
small input (:func:`mmchansearch.coverage.check_coverage`): no crash, the
full model's FLOPs and params equal fvcore's and torch's, and where a group
is searchable a random subnet exports to a static model with the
supernet's logits and the estimated FLOPs and params.
"""
from __future__ import annotations

import json
import os.path as osp
from importlib.util import find_spec
from pathlib import Path

import mmpretrain
import pytest

from mmchansearch.cli import load_config
from mmchansearch.coverage import check_coverage

REPO = Path(__file__).resolve().parents[1]
MMPRETRAIN_CONFIGS = osp.join(osp.dirname(mmpretrain.__file__), '.mim',
                              'configs')
# The configs of the table in docs/model_zoo.md, with the input size each
# is checked at: the smallest every model runs at (VGG's classifier
# needs 224, Inception-v3 75), else 32.
ZOO = {
    'resnet/resnet18_8xb32_in1k.py': 32,
    'resnet/resnet50_8xb32_in1k.py': 32,
    'resnet/resnet18_8xb16_cifar10.py': 32,
    'resnet/resnetv1d50_8xb32_in1k.py': 32,
    'resnext/resnext50-32x4d_8xb32_in1k.py': 32,
    'seresnet/seresnet50_8xb32_in1k.py': 32,
    'regnet/regnetx-400mf_8xb128_in1k.py': 32,
    'mobilenet_v2/mobilenet-v2_8xb32_in1k.py': 32,
    'mobilenet_v3/mobilenet-v3-small_8xb128_in1k.py': 32,
    'mobilenet_v3/mobilenet-v3-large_8xb128_in1k.py': 32,
    'efficientnet/efficientnet-b0_8xb32_in1k.py': 32,
    'efficientnet_v2/efficientnetv2-b0_8xb32_in1k.py': 32,
    'shufflenet_v1/shufflenet-v1-1x_16xb64_in1k.py': 32,
    'shufflenet_v2/shufflenet-v2-1x_16xb64_in1k.py': 32,
    'densenet/densenet121_4xb256_in1k.py': 32,
    'vgg/vgg11bn_8xb32_in1k.py': 224,
    'repvgg/repvgg-A0_8xb32_in1k.py': 32,
    'mobileone/mobileone-s0_8xb32_in1k.py': 32,
    'convnext/convnext-tiny_32xb128_in1k.py': 32,
    'cspnet/cspdarknet50_8xb32_in1k.py': 32,
    'cspnet/cspresnet50_8xb32_in1k.py': 32,
    'res2net/res2net50-w14-s8_8xb32_in1k.py': 32,
    'hrnet/hrnet-w18_4xb32_in1k.py': 32,
    'wrn/wide-resnet50_8xb32_in1k.py': 32,
    'resnest/resnest50_32xb64_in1k.py': 32,
    'inception_v3/inception-v3_8xb32_in1k.py': 75,
}
# timm models through mmpretrain's TIMMBackbone (configs/model_zoo/).
TIMM_ZOO = ('timm-resnet50_in1k.py', 'timm-efficientnet-b0_in1k.py',
            'timm-mobilenetv3-large-100_in1k.py', 'timm-regnetx-002_in1k.py')
CASES = [(osp.join(MMPRETRAIN_CONFIGS, path), size)
         for path, size in ZOO.items()] + [
             (str(REPO / 'configs' / 'model_zoo' / path), 32)
             for path in TIMM_ZOO]
# relative to max |logit|: the supernet at a subnet and its export
LOGIT_TOLERANCE = 1e-4


@pytest.mark.parametrize('config,size', CASES,
                         ids=[osp.basename(c)[:-3] for c, _ in CASES])
def test_model_is_counted_and_exported_exactly(config, size):
    if 'timm-' in config and find_spec('timm') is None:
        pytest.skip('timm is not installed')
    name = osp.basename(config)[:-3]
    report = check_coverage(load_config(config), name, (3, size, size))
    assert report.error is None, report.error
    assert report.flops == report.fvcore_flops
    assert report.params == report.torch_params
    assert report.exact
    if report.groups:
        assert report.logit_diff <= LOGIT_TOLERANCE
        assert report.static_flops == report.subnet_flops
        assert report.static_params == report.subnet_params
        assert report.subnet_flops < report.flops  # a real subnet


def test_tool_reports_every_config_in_its_row(tmp_path, run_tool):
    """A config that fails is reported in its row; the table completes."""
    config = osp.join(MMPRETRAIN_CONFIGS, 'mobilenet_v3',
                      'mobilenet-v3-small_8xb128_in1k.py')
    table, data = tmp_path / 'zoo.md', tmp_path / 'zoo.json'
    result = run_tool('tools/analysis_tools/coverage.py',
                      tmp_path / 'missing.py', f'{config}@32',
                      '--out-md', table, '--json', data)
    rows = table.read_text().splitlines()
    assert len(rows) == 4  # header, rule, two models
    assert rows[2].startswith('| missing | 64x64 | error: config ')
    assert rows[3].startswith('| mobilenet-v3-small_8xb128_in1k | 32x32 |')
    assert rows[3] in result.stdout
    reports = json.loads(data.read_text())
    assert reports[1]['exact'] and reports[1]['export_exact']
    assert len({row.count('|') for row in rows}) == 1  # same columns
