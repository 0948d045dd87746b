# Sanity baseline: plain MobileNetV2 1.0x trained on Fashion-MNIST (32x32,
# 3 channels) on one device, batch 64, no channel search.
#   python tools/prepare_data.py fashion_mnist
#   python tools/train.py configs/baselines/mobilenet_v2_1xb64_fashion_mnist.py
_base_ = [
    '../_base_/models/mobilenet_v2_fashion_mnist.py',
    '../_base_/datasets/fashion_mnist_bs64.py',
    '../_base_/schedules/fashion_mnist_sgd.py',
    '../_base_/default_runtime.py',
]

max_epochs = 5
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = dict(end=max_epochs)
# a plain classifier: its weights go channels-last (2x faster on CPUs) here
custom_hooks = [*_base_.custom_hooks,
                dict(type='MemoryFormatHook', memory_format='channels_last')]
