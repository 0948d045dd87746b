# The classifier every model config here builds: a backbone, global
# average pooling and a linear head with cross-entropy that reports top-1
# and top-5. A model config inherits it and adds the backbone and the
# head's in_channels (num_classes too, if not ImageNet's 1000).
model = dict(
    type='ImageClassifier',
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))
