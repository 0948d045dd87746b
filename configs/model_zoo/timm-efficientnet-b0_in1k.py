# timm's efficientnet_b0 (random weights) through mmpretrain's
# TIMMBackbone, for the model-zoo coverage table (docs/model_zoo.md).
model = dict(
    type='ImageClassifier',
    backbone=dict(type='TIMMBackbone', model_name='efficientnet_b0',
                  pretrained=False),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=1000, in_channels=1280,
              loss=dict(type='CrossEntropyLoss')))
