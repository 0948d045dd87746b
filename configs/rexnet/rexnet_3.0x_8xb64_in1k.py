# ReXNet 3.0x on ImageNet-1k: the 1.0x recipe with every width 3.0x.
# 34.71M params, 3.396G conv + linear MACs at 224x224;
# published 82.8 top-1, 34M / 3.4G.
_base_ = ['./rexnet_1.0x_8xb64_in1k.py']

model = dict(
    backbone=dict(widen_factor=3.0),
    head=dict(in_channels=3840))
