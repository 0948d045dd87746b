# ImageNet-1k with the AutoSlim / slimmable-networks "mobile" recipe, as
# OpenMMLab reproduced it (MobileNetV2 74.23 / 72.73 / 71.39 top-1 at
# 530M / 320M / 220M): random crops of 25-100% of the image, color
# jitter 0.4, flips; Pillow resizing, as in the original PyTorch code.
# 256 images per GPU: 8 GPUs x 256 = the "8xb256" of config names.
#
# Layout (mmpretrain's ImageNet): data/imagenet/{train,val}/ and
# data/imagenet/meta/{train,val}.txt
dataset_type = 'ImageNet'
data_root = 'data/imagenet'

data_preprocessor = dict(
    num_classes=1000,
    # RGB normalization; images are loaded as BGR
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True,
)

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

train_dataloader = dict(
    batch_size=256,
    num_workers=8,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=256,
    num_workers=8,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='val',
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, 5))

# The ImageNet test labels are not public: test on the validation set.
test_dataloader = val_dataloader
test_evaluator = val_evaluator
