# Retraining of searched MobileNetV2 1.0x subnets on Fashion-MNIST.
# Several channel_cfgs train jointly (shared weights, private BN per subnet):
#   python tools/train.py THIS_CONFIG \
#       --cfg-options model.channel_cfgs=a.yaml,b.yaml,c.yaml
# one channel_cfg trains (and tests) that subnet alone, as a static network.
_base_ = [
    '../_base_/models/mobilenet_v2_fashion_mnist.py',
    '../_base_/datasets/fashion_mnist_bs64.py',
    '../_base_/schedules/fashion_mnist_sgd.py',
    '../_base_/search_runtime.py',  # + the ChannelSearchDDP wrapper
]

model = dict(
    _delete_=True,
    type='SlimmableNetwork',
    architecture=_base_.model,
    mutator=dict(type='ChannelMutator', input_shape=(3, 32, 32)),
    channel_cfgs=None,  # set on the command line
    distill=False)

val_cfg = dict(type='SubnetValLoop')
test_cfg = dict(type='SubnetTestLoop')
