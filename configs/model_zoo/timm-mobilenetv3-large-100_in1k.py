# timm's mobilenetv3_large_100 (random weights) through mmpretrain's
# TIMMBackbone, for the model-zoo coverage table (docs/model_zoo.md).
_base_ = ['../_base_/models/timm_in1k.py']

model = dict(
    backbone=dict(model_name='mobilenetv3_large_100'),
    head=dict(in_channels=1280))
