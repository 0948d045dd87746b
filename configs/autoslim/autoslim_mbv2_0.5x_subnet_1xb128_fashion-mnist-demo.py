# The quick-start demo's retraining: a searched (or uniform) subnet of the
# 0.5x supernet trained from scratch with the supernet's data and schedule
# (28x28, the same 50000 images, 3 epochs at batch 128, warm-up, cosine) at
# a single network's learning rate, 0.1. One channel_cfg trains that subnet
# as a static network; several train jointly (shared weights, private BN).
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
# a retrained network keeps its own BN statistics
val_cfg = dict(_delete_=True, type='SubnetValLoop')
test_cfg = dict(_delete_=True, type='SubnetTestLoop')
