# Retrains one network of the Fashion-MNIST ReXNet search space from
# scratch: the 8-block ReXNet of the search config at the block widths of
# the search's result (best.yaml, a channel_cfg whose blocks: give every
# block's width):
#   python tools/train.py configs/rexnet/\
#     rexnet_retrain_1xb64_fashion-mnist.py --cfg-options \
#     model.channel_cfgs=work_dirs/rexnet_search/best.yaml
# (the config path is one word: no space after the slash)
# Trains on the first 50000 training images, validates on 2000 held-out
# training images (what the search ranks on) and tests on the 10000 test
# images (`test_dataloader` of the dataset config, test_mode=True):
#   python tools/test.py configs/rexnet/\
#     rexnet_retrain_1xb64_fashion-mnist.py work_dirs/.../epoch_30.pth
# (the checkpoint holds its channel_cfg). The old key
# model.backbone.block_channels=[...] still works, deprecated.
_base_ = ['./rexnet_search_1xb64_fashion-mnist.py']

model = dict(
    _delete_=True,
    type='SlimmableNetwork',
    architecture=_base_.model,
    mutator=dict(type='ChannelMutator', input_shape=(3, 32, 32)),
    channel_cfgs=None)  # set on the command line: the best.yaml
search_loop = None

train_dataloader = dict(dataset=dict(stop=50000))

max_epochs = 30
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = dict(end=max_epochs)
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1))
