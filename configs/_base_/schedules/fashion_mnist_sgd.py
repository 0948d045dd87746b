# SGD with cosine decay for Fashion-MNIST at batch 64 on one device.
# A config changing max_epochs also sets param_scheduler.end to it.
max_epochs = 30

optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=0.05, momentum=0.9, nesterov=True,
        weight_decay=4e-5),
    # no weight decay on BN and biases, as in the mobile ImageNet recipes
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
)

# cosine to 0 over max_epochs, stepped every iteration
param_scheduler = dict(
    type='CosineAnnealingLR',
    by_epoch=True,
    begin=0,
    end=max_epochs,
    eta_min=0.0,
    convert_to_iter_based=True)

train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)

# `--auto-scale-lr` scales lr by (total batch size / 64)
auto_scale_lr = dict(base_batch_size=64)
