# MobileNetV2 1.0x for 32x32 Fashion-MNIST images replicated to 3
# channels (see datasets/fashion_mnist_bs64.py); 10 classes.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='MobileNetV2', widen_factor=1.0),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=1280,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5),
    ))
