# ReXNet 1.5x on ImageNet-1k: the 1.0x recipe with every width 1.5x.
# 9.73M params, 0.876G conv + linear MACs at 224x224;
# published 80.3 top-1, 9.7M / 0.88G.
_base_ = ['./rexnet_1.0x_8xb64_in1k.py']

model = dict(
    backbone=dict(widen_factor=1.5),
    head=dict(in_channels=1920))
