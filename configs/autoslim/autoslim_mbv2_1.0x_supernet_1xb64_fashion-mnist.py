# AutoSlim supernet of MobileNetV2 1.0x on Fashion-MNIST (32x32, 1 device).
# Sandwich rule (max, min, 2 random widths per step) with in-place
# distillation; validation reports the max and min widths after BN
# recalibration. The last 10000 training images are held out for the
# greedy search (see the search config).
_base_ = [
    '../_base_/models/mobilenet_v2_fashion_mnist.py',
    '../_base_/datasets/fashion_mnist_bs64.py',
    '../_base_/schedules/fashion_mnist_sgd.py',
    '../_base_/default_runtime.py',
]

model = dict(
    _delete_=True,
    type='AutoSlim',
    architecture=_base_.model,
    mutator=dict(
        type='ChannelMutator',
        input_shape=(3, 32, 32),
        # widths in eighths of each group's max, multiples of 8
        width_ratios=[i / 8 for i in range(1, 9)],
        divisor=8,
        min_width=8),
    num_samples=4,
    distill=True)
model_wrapper_cfg = dict(type='ChannelSearchDDP')

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='SubsetDataset',
        start=0,
        stop=50000,
        dataset=_base_.train_dataloader.dataset))

val_cfg = dict(type='SubnetValLoop', calibrate_bn_batches=10)
test_cfg = dict(type='SubnetTestLoop', calibrate_bn_batches=10)

max_epochs = 10
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = dict(end=max_epochs)
