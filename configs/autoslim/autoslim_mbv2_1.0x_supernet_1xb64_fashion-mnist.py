# AutoSlim supernet of MobileNetV2 1.0x on Fashion-MNIST (32x32, 1 device).
# Sandwich rule (max, min, 2 random widths per step) with in-place
# distillation; validation reports the max and min widths after BN
# recalibration. The supernet trains on the first 50000 training images;
# the last 10000 are held out for the greedy search (see the search
# config).
_base_ = [
    '../_base_/models/mobilenet_v2_fashion_mnist.py',
    '../_base_/datasets/fashion_mnist_bs64_heldout.py',  # [0, 50000)
    '../_base_/schedules/fashion_mnist_sgd.py',
    '../_base_/search_runtime.py',  # + the ChannelSearchDDP wrapper
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

val_cfg = dict(type='SubnetValLoop', calibrate_bn_batches=10)
test_cfg = dict(type='SubnetTestLoop', calibrate_bn_batches=10)

max_epochs = 10
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = dict(end=max_epochs)
