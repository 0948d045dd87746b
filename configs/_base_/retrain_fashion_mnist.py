# Retraining a search's result from scratch on Fashion-MNIST: 30 epochs of
# SGD on the 60000 training images, tested on the 10000 test images, as the
# SlimmableNetwork of algorithms/slimmable.py (the result given as
# model.channel_cfgs), validated and tested per subnet. A config adds its
# classifier and wraps it:
#   _base_ = ['../_base_/models/MODEL.py',
#             '../_base_/retrain_fashion_mnist.py']
#   model = dict(_base_.algorithm, _delete_=True, architecture=_base_.model)
_base_ = [
    './datasets/fashion_mnist_bs64.py',
    './schedules/fashion_mnist_sgd.py',
    './algorithms/slimmable.py',
]
