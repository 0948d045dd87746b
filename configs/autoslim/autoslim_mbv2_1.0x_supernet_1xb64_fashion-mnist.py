# AutoSlim supernet of MobileNetV2 1.0x on Fashion-MNIST (32x32, 1 device).
# Sandwich rule (max, min, 2 random widths per step) with in-place
# distillation; validation reports the max and min widths after BN
# recalibration. The supernet trains on the first 50000 training images;
# the last 10000 are held out for the greedy search (see the search
# config).
_base_ = [
    '../_base_/models/mobilenet_v2_fashion_mnist.py',
    '../_base_/schedules/fashion_mnist_sgd_heldout.py',  # + data [0, 50000)
    '../_base_/algorithms/autoslim.py',  # + loops, runtime
]

model = dict(_base_.algorithm, _delete_=True, architecture=_base_.model)

max_epochs = 10
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = dict(end=max_epochs)
