# The quick-start demo's retraining: a searched (or uniform) subnet of the
# 0.5x supernet trained from scratch with the supernet's data and schedule
# (28x28, the same 50000 images, 3 epochs at batch 128, lr 0.1 after a
# 200-iteration warm-up, cosine to 0). One channel_cfg trains that subnet
# as a static network; several train jointly (shared weights, private BN).
_base_ = ['./autoslim_mbv2_1.0x_subnet_1xb64_fashion-mnist.py']

input_shape = (3, 28, 28)
train_pipeline = [dict(type='GrayToRGB'), dict(type='PackInputs')]
test_pipeline = train_pipeline

model = dict(
    architecture=dict(backbone=dict(widen_factor=0.5)),
    mutator=dict(input_shape=input_shape,
                 width_ratios=[0.25, 0.5, 0.75, 1.0]))

train_dataloader = dict(
    batch_size=128, num_workers=0, persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='SubsetDataset',
        start=0,
        stop=50000,
        dataset=dict(_base_.train_dataloader.dataset,
                     pipeline=train_pipeline)))
val_dataloader = dict(batch_size=500, num_workers=0,
                      persistent_workers=False,
                      dataset=dict(pipeline=test_pipeline))
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
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(max_keep_ckpts=1))
