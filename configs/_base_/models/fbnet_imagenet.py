# FBNet's search space (Wu et al., CVPR 2019, Table 1) for 224x224
# ImageNet: stem 3x3 conv 16 stride 2; 22 searchable layers in stages of
# 1, 4, 4, 4, 4, 4, 1 with 16, 24, 32, 64, 112, 184, 352 channels (first
# strides 1, 2, 2, 2, 1, 2, 1), each choosing one of k3_e1, k3_e1_g2,
# k3_e3, k3_e6, k5_e1, k5_e1_g2, k5_e3, k5_e6 and skip; 1x1 conv 1984;
# average pooling; 1000-class linear head.
_base_ = ['./image_classifier.py']

model = dict(
    backbone=dict(type='FBNetSearchSpace'), head=dict(in_channels=1984))
