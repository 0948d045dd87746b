# Retrains a Network Adjustment result (or any channel_cfg of this model)
# from scratch with the Fashion-MNIST recipe:
#   python tools/train.py configs/network_adjustment/\
#     na_resnet18-cifar-0.25x_retrain_1xb64_fashion-mnist.py \
#     --cfg-options model.channel_cfgs=work_dirs/na_fmnist/final.yaml
# (the config path is one word: no space after the slash)
# The network is the static subnet of the channel_cfg (physically that
# size); the mutator must match the search config's (width_cap, divisor).
_base_ = ['./na_resnet18-cifar-0.25x_search_1xb64_fashion-mnist.py']

model = dict(type='SlimmableNetwork', channel_cfgs=None)
search_loop = None

max_epochs = 30
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
param_scheduler = dict(end=max_epochs)
# the last checkpoint is kept; none is chosen by its validation (test)
# accuracy
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1))
