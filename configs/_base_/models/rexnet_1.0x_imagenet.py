# ReXNet 1.0x for ImageNet (Han et al., CVPR 2021): 4.80M params, 0.398G
# conv + linear MACs at 224x224; block widths 16..185, last conv 1280.
# Label smoothing 0.1; dropout 0.2 before the fc layer, as the published
# classifier (the official command's --drop 0.2).
_base_ = ['./image_classifier.py']

model = dict(
    backbone=dict(type='ReXNet', widen_factor=1.0),
    head=dict(
        type='DropoutLinearClsHead',
        dropout_rate=0.2,
        in_channels=1280,
        loss=dict(type='LabelSmoothLoss', mode='original',
                  label_smooth_val=0.1)))
