# ResNet-18 (CIFAR stem: 3x3 conv, no max pool) at a quarter of the width
# (stages of 16/32/64/128 channels) for 32x32 Fashion-MNIST images
# replicated to 3 channels; 10 classes. 35.0M FLOPs, 0.70M params.
_base_ = ['./image_classifier.py']

model = dict(
    backbone=dict(
        type='ResNet_CIFAR', depth=18, stem_channels=16, base_channels=16),
    head=dict(num_classes=10, in_channels=128))
