# timm's resnet50 (random weights) through mmpretrain's
# TIMMBackbone, for the model-zoo coverage table (docs/model_zoo.md).
_base_ = ['../_base_/models/timm_in1k.py']

model = dict(
    backbone=dict(model_name='resnet50'),
    head=dict(in_channels=2048))
