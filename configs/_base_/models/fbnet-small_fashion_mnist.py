# A reduced FBNet search space for 32x32 Fashion-MNIST images (replicated
# to 3 channels): stem 16 channels at stride 1, 7 searchable layers in
# stages of 1, 2, 2, 2 (16, 24, 32, 64 channels), all 9 FBNet candidate
# blocks, last conv 256; 10 classes. The FBNetSearchSpace defaults are
# FBNet's ImageNet space (see fbnet_imagenet.py).
_base_ = ['./image_classifier.py']

model = dict(
    backbone=dict(
        type='FBNetSearchSpace',
        stages=((1, 16, 1), (2, 24, 2), (2, 32, 2), (2, 64, 2)),
        stem_channels=16,
        stem_stride=1,
        last_channels=256),
    head=dict(num_classes=10, in_channels=256))
