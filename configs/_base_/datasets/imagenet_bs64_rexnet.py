# ImageNet-1k with the augmentation of the ReXNet recipe (timm's
# defaults plus the flags of the official training command): random crops
# of 8-100% of the image, flips, RandAugment rand-m9-mstd0.5, random
# erasing with probability 0.2 and per-pixel random fill; bicubic
# resizing, test images resized to 256 and center-cropped to 224.
# 64 images per GPU: 8 GPUs x 64 = the "8xb64" of config names, the
# paper's batch of 512.
#
# Dataset, normalization, samplers and evaluator: imagenet_bs32.py.
_base_ = ['./imagenet_bs32.py']

bgr_mean = _base_.data_preprocessor['mean'][::-1]
bgr_std = _base_.data_preprocessor['std'][::-1]

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=224,
        crop_ratio_range=(0.08, 1.0),
        backend='pillow',
        interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(
        type='RandAugment',
        policies='timm_increasing',
        num_policies=2,
        total_level=10,
        magnitude_level=9,
        magnitude_std=0.5,
        hparams=dict(
            pad_val=[round(x) for x in bgr_mean], interpolation='bicubic')),
    dict(
        type='RandomErasing',
        erase_prob=0.2,
        mode='rand',
        min_area_ratio=0.02,
        max_area_ratio=1 / 3,
        fill_color=bgr_mean,
        fill_std=bgr_std),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='ResizeEdge',
        scale=256,
        edge='short',
        backend='pillow',
        interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

# The base's dataloaders hold the base's pipelines: set them again here.
train_dataloader = dict(
    batch_size=64, num_workers=8, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64, num_workers=8, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
