# A timm model (random weights) through mmpretrain's TIMMBackbone as a
# 1000-class classifier, for the model-zoo coverage table
# (docs/model_zoo.md): a config under configs/model_zoo/ names the timm
# model (backbone.model_name) and its feature width (head.in_channels).
model = dict(
    type='ImageClassifier',
    backbone=dict(type='TIMMBackbone', pretrained=False),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=1000,
              loss=dict(type='CrossEntropyLoss')))
