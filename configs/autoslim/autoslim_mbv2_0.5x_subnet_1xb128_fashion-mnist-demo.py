# The quick-start demo's retraining: a searched (or uniform) subnet of the
# 0.5x supernet trained from scratch with the supernet's data (28x28, the
# same 50000 images, batch 128) for 5 epochs (warm-up, cosine) at a single
# network's learning rate, 0.1. One channel_cfg trains that subnet as a
# static network; several train jointly (shared weights, private BN).
# 5 epochs, not the supernet's 3: at 3 the retraining noise (about 0.5
# points between seeds) was as large as the searched-vs-uniform gap
# (benchmarks/RESULTS.md section 6).
_base_ = ['./autoslim_mbv2_0.5x_supernet_1xb128_fashion-mnist-demo.py']

model = dict(
    _delete_=True,
    type='SlimmableNetwork',
    architecture=_base_.model.architecture,
    mutator=dict(type='ChannelMutator', input_shape=_base_.input_shape,
                 width_ratios=[0.25, 0.5, 0.75, 1.0]),
    channel_cfgs=None,  # set on the command line
    distill=False)
optim_wrapper = dict(optimizer=dict(lr=0.1))
max_epochs = 5
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.02, by_epoch=False, begin=0,
         end=_base_.warmup_iters),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
         eta_min=0.0, convert_to_iter_based=True),
]
# a retrained network keeps its own BN statistics
val_cfg = dict(_delete_=True, type='SubnetValLoop')
test_cfg = dict(_delete_=True, type='SubnetTestLoop')
