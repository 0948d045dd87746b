# The quick-start demo's supernet: the Fashion-MNIST AutoSlim recipe cut
# down to minutes on 2 CPU cores (MobileNetV2 0.5x, 6000 training images,
# 2 epochs, widths in quarters). Numbers from it show the pipeline works;
# they are not a benchmark.
_base_ = ['./autoslim_mbv2_1.0x_supernet_1xb64_fashion-mnist.py']

model = dict(
    architecture=dict(backbone=dict(widen_factor=0.5)),
    mutator=dict(width_ratios=[0.25, 0.5, 0.75, 1.0]))

train_dataloader = dict(
    num_workers=0, persistent_workers=False, dataset=dict(stop=6000))
val_dataloader = dict(num_workers=0, persistent_workers=False)
test_dataloader = val_dataloader

max_epochs = 2
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = dict(end=max_epochs)
val_cfg = dict(calibrate_bn_batches=5)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(max_keep_ckpts=1))
