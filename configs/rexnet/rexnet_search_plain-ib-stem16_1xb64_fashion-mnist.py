# ReXNet's channel parameterization search in the paper's setting, sized
# for a CPU: the paper searched a plain inverted-bottleneck network
# (MobileNetV2's block, no squeeze-excitation, ReLU6) with a 16-channel
# stem on CIFAR-style 32x32 images, not ReXNet itself and not ImageNet.
# Here the images are Fashion-MNIST at 32x32:
#   python tools/search.py configs/rexnet/\
#     rexnet_search_plain-ib-stem16_1xb64_fashion-mnist.py \
#     --work-dir work_dirs/rexnet_paper_fmnist
# (the config path is one word: no space after the slash)
# 8 blocks in six stages of 1, 1, 1, 2, 1, 2 (strides 1, 2, 2, 2, 1, 2),
# stem 3x3 conv stride 1 with 16 channels, last conv 320 channels; the
# search samples the 8 block widths as a * f(i) + b, non-decreasing, within
# 3.0-4.5M FLOPs and 0.3M params, trains each candidate 2 epochs on 5000
# training images per seed and ranks them on 2000 held-out training
# images (the test files stay untouched). The depth (8 blocks) and the
# second stage's stride 2 are this CPU setting's, not the paper's.
# Data, the candidates' schedule and the loop's settings are those of the
# ReXNet search on Fashion-MNIST; the network and the FLOPs range differ.
_base_ = [
    './rexnet_search_1xb64_fashion-mnist.py',
    '../_base_/models/plain-ib-stem16_backbone.py',
]

model = dict(backbone=dict(_base_.plain_ib_backbone, _delete_=True),
             head=dict(in_channels=_base_.last_channels))

search_loop = dict(max_flops=4.5e6, min_flops=3.0e6)
