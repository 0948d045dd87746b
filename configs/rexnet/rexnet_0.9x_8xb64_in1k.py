# ReXNet 0.9x on ImageNet-1k: the 1.0x recipe with every width 0.9x.
# 4.09M params, 0.348G conv + linear MACs at 224x224;
# published 4.1M / 0.35G.
_base_ = ['./rexnet_1.0x_8xb64_in1k.py']

model = dict(
    backbone=dict(widen_factor=0.9),
    head=dict(in_channels=1152))
