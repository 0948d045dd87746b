# ReXNet 2.0x on ImageNet-1k: the 1.0x recipe with every width 2.0x.
# 16.37M params, 1.529G conv + linear MACs at 224x224;
# published 81.6 top-1, 16M / 1.5G.
_base_ = ['./rexnet_1.0x_8xb64_in1k.py']

model = dict(
    backbone=dict(widen_factor=2.0),
    head=dict(in_channels=2560))
