# The AutoSlim schedule for a total batch of 2048 (8 GPUs x 256), as in
# OpenMMLab's reproduction of the paper (mmrazor v0.1): SGD with Nesterov
# momentum, lr 0.5 decayed linearly to 0 every iteration, no weight decay
# on BN, biases and depthwise convs (as the slimmable-networks code).
# Retraining a searched subnet runs 300 epochs (below); method configs
# set their own length for the supernet (AutoSlim: 50 epochs) by
# overriding max_epochs, train_cfg.max_epochs and param_scheduler.end.
# Label smoothing 0.1 is set in the model head, not here. It inherits its
# data (datasets/imagenet_bs256_autoslim.py): list it instead of the
# dataset config.
_base_ = ['../datasets/imagenet_bs256_autoslim.py']

max_epochs = 300

optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=0.5, momentum=0.9, nesterov=True,
        # mmrazor v0.1's value, that produced the reference results;
        # the slimmable-networks code and mmrazor 1.x use 4e-5
        weight_decay=1e-4),
    paramwise_cfg=dict(
        norm_decay_mult=0.0, bias_decay_mult=0.0, dwconv_decay_mult=0.0),
)

# linear decay to 0 (poly, power 1), stepped every iteration
param_scheduler = dict(
    type='PolyLR',
    power=1.0,
    eta_min=0.0,
    by_epoch=True,
    begin=0,
    end=max_epochs,
    convert_to_iter_based=True)

train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)

# `--auto-scale-lr` scales lr by (total batch size / 2048)
auto_scale_lr = dict(base_batch_size=2048)
