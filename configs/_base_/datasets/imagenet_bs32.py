# ImageNet-1k with the standard ResNet recipe (mmpretrain's imagenet_bs32):
# random-resized crops (8-100%) and flips for training, 256 short edge +
# 224 center crop for testing; 32 images per GPU.
#
# The other ImageNet dataset configs inherit this one and replace the
# pipelines, the batch size and the number of workers.
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
    dict(type='RandomResizedCrop', scale=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=32,
    num_workers=5,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)
# The validation images, loaded like the training ones but with the test
# pipeline and in order.
val_dataloader = dict(
    train_dataloader,
    dataset=dict(
        train_dataloader['dataset'], split='val', pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, 5))

# The ImageNet test labels are not public: test on the validation set.
test_dataloader = val_dataloader
test_evaluator = val_evaluator
