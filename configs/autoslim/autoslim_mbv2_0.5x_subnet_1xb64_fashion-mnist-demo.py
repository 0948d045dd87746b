# The quick-start demo's retraining: searched (or uniform) subnets of the
# 0.5x supernet, trained jointly on 6000 images for 3 epochs.
_base_ = ['./autoslim_mbv2_1.0x_subnet_1xb64_fashion-mnist.py']

model = dict(
    architecture=dict(backbone=dict(widen_factor=0.5)),
    mutator=dict(width_ratios=[0.25, 0.5, 0.75, 1.0]))

train_dataloader = dict(
    num_workers=0, persistent_workers=False, dataset=dict(indices=6000))
val_dataloader = dict(num_workers=0, persistent_workers=False)
test_dataloader = val_dataloader

max_epochs = 3
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = dict(end=max_epochs)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(max_keep_ckpts=1))
