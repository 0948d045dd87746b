# A reduced FBNetV2 search space (FBNetV2SearchSpace) for 32x32
# Fashion-MNIST images (replicated to 3 channels), at its max widths: stem
# 8 or 16 channels at stride 1; stages of 1, 2, 2, 2 blocks (stride 1, 2,
# 2, 2) with 8-16, 16-24, 24-32, 32-64 channels; every block's expansion
# one of FBNetV2's 0.75 .. 4.5 (of its widest input; the first stage keeps
# 1) and its depthwise kernel 3 or 5; last conv 128 or 256; 10 classes.
# 1.4M-8.9M FLOPs. It narrows the ImageNet space of fbnetv2_imagenet.py
# (the defaults of FBNetV2SearchSpace), keeping its expansions and width
# divisor.
_base_ = ['./fbnetv2_imagenet.py']

expansions = _base_.expansions
model = dict(
    backbone=dict(
        stages=[
            dict(blocks=1, stride=1, channels=[8, 16], expansions=[1],
                 kernels=[3, 5]),
            dict(blocks=2, stride=2, channels=[16, 24],
                 expansions=expansions, kernels=[3, 5]),
            dict(blocks=2, stride=2, channels=[24, 32],
                 expansions=expansions, kernels=[3, 5]),
            dict(blocks=2, stride=2, channels=[32, 48, 64],
                 expansions=expansions, kernels=[3, 5]),
        ],
        stem_channels=[8, 16],
        stem_stride=1,  # 32x32 inputs
        last_channels=[128, 256]),
    head=dict(num_classes=10, in_channels=256))
