# The quick-start demo's supernet: MobileNetV2 0.5x (1.97M FLOPs at 32x32)
# on the first 50000 Fashion-MNIST training images, 3 epochs at batch 128,
# widths in quarters of each group's max (multiples of 8). Sandwich rule
# with in-place distillation, as in the full recipe. The learning rate
# warms up over the first 200 iterations (without it MobileNetV2 reaches
# about 77% test top-1 after one epoch instead of 84%), then follows a
# cosine to 0. The last 10000 training images stay held out for the greedy
# search.
_base_ = ['./autoslim_mbv2_1.0x_supernet_1xb64_fashion-mnist.py']

model = dict(
    architecture=dict(backbone=dict(widen_factor=0.5)),
    mutator=dict(width_ratios=[0.25, 0.5, 0.75, 1.0]))

train_dataloader = dict(
    batch_size=128, num_workers=0, persistent_workers=False)
val_dataloader = dict(batch_size=500, num_workers=0,
                      persistent_workers=False)
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=0.1))

max_epochs = 3
warmup_iters = 200
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.02, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
         eta_min=0.0, convert_to_iter_based=True),
]
auto_scale_lr = dict(base_batch_size=128)
val_cfg = dict(calibrate_bn_batches=10)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(max_keep_ckpts=1))
