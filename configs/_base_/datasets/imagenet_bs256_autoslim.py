# ImageNet-1k with the AutoSlim / slimmable-networks "mobile" recipe, as
# OpenMMLab reproduced it (MobileNetV2 74.23 / 72.73 / 71.39 top-1 at
# 530M / 320M / 220M): random crops of 25-100% of the image, color
# jitter 0.4, flips; Pillow resizing, as in the original PyTorch code.
# 256 images per GPU: 8 GPUs x 256 = the "8xb256" of config names.
#
# Dataset, normalization, samplers and evaluator: imagenet_bs32.py.
_base_ = ['./imagenet_bs32.py']

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=224,
        crop_ratio_range=(0.25, 1.0),
        backend='pillow'),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

# The base's dataloaders hold the base's pipelines: set them again here.
train_dataloader = dict(
    batch_size=256, num_workers=8, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=256, num_workers=8, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
