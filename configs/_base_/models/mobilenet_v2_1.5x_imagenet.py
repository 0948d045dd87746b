# MobileNetV2 1.5x, the AutoSlim supernet for ImageNet: every width 1.5x
# the standard model's, so the last conv has 1920 channels; label
# smoothing 0.1 as in the AutoSlim recipe.
_base_ = ['./image_classifier.py']

model = dict(
    backbone=dict(type='MobileNetV2', widen_factor=1.5),
    head=dict(
        in_channels=1920,
        loss=dict(type='LabelSmoothLoss', mode='original',
                  label_smooth_val=0.1)))
