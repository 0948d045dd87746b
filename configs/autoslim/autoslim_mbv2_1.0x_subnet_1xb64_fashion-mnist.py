# Retraining of searched MobileNetV2 1.0x subnets on Fashion-MNIST.
# Several channel_cfgs train jointly (shared weights, private BN per subnet):
#   python tools/train.py THIS_CONFIG \
#       --cfg-options model.channel_cfgs=a.yaml,b.yaml,c.yaml
# one channel_cfg trains (and tests) that subnet alone, as a static network.
_base_ = [
    '../_base_/models/mobilenet_v2_fashion_mnist.py',
    '../_base_/retrain_fashion_mnist.py',  # data, SGD, SlimmableNetwork
]

model = dict(_base_.algorithm, _delete_=True, architecture=_base_.model)
