# The quick-start demo's retraining started from the supernet: every
# searched (or uniform) subnet begins with the supernet's weights sliced to
# its widths (model.init_from, set on the command line to the supernet
# checkpoint) and is fine-tuned alone for 2 epochs on the supernet's 50000
# training images, lr 0.05 with a cosine to 0 and no warm-up (the weights
# are trained already). Searched and uniform networks get the same start
# and the same schedule; from scratch: the `_subnet_` config.
_base_ = ['./autoslim_mbv2_0.5x_subnet_1xb128_fashion-mnist-demo.py']

model = dict(init_from=None)  # the supernet checkpoint
optim_wrapper = dict(optimizer=dict(lr=0.05))
max_epochs = 2
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
         eta_min=0.0, convert_to_iter_based=True),
]
