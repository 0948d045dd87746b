# MobileNetV2 1.0x for 32x32 Fashion-MNIST images replicated to 3
# channels (see datasets/fashion_mnist_bs64.py); 10 classes.
_base_ = ['./image_classifier.py']

model = dict(
    backbone=dict(type='MobileNetV2', widen_factor=1.0),
    head=dict(num_classes=10, in_channels=1280))
