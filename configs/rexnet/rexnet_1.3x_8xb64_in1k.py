# ReXNet 1.3x on ImageNet-1k: the 1.0x recipe with every width 1.3x.
# 7.56M params, 0.662G conv + linear MACs at 224x224;
# published 79.5 top-1, 7.6M / 0.66G.
_base_ = ['./rexnet_1.0x_8xb64_in1k.py']

model = dict(
    backbone=dict(widen_factor=1.3),
    head=dict(in_channels=1664))
