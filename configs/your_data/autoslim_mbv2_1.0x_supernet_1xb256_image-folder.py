# AutoSlim supernet of a classifier config you already have: here
# mmpretrain's MobileNetV2 1.0x ImageNet config, trained on your own images
# in an ImageNet-style folder, one subfolder per class:
#   data/my_images/train/<class>/*.jpg   training images
#   data/my_images/val/<class>/*.jpg     validation / test images
# Put the path of your own config in `_base_`; its model, schedule and
# runtime are kept, its data settings replaced below. See
# docs/your_model_your_data.md.
_base_ = ['mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py']

data_root = 'data/my_images'
num_classes = 10
# the input size the pipelines give (and the FLOPs are counted at)
input_size = 224
input_shape = (3, input_size, input_size)
# The folder lists images sorted by class, so both splits take ranges of
# one random permutation (permute_seed): images [0, supernet_images) of it
# train the supernet, the rest are the search's held-out set.
supernet_images = 9000
split_seed = 0

model = dict(
    _delete_=True,
    type='AutoSlim',
    architecture=dict(
        _base_.model,
        head=dict(_base_.model.head, num_classes=num_classes)),
    mutator=dict(
        type='ChannelMutator',
        input_shape=input_shape,
        # widths in eighths of each group's max, multiples of 8
        width_ratios=[i / 8 for i in range(1, 9)],
        divisor=8,
        min_width=8),
    num_samples=4,  # sandwich rule: max, min and 2 random widths a step
    distill=True)
model_wrapper_cfg = dict(type='ChannelSearchDDP')
data_preprocessor = dict(num_classes=num_classes)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=input_size, backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=input_size * 8 // 7, edge='short',
         backend='pillow'),
    dict(type='CenterCrop', crop_size=input_size),
    dict(type='PackInputs'),
]

# one device, batch 256: the total batch the schedule's lr is for
train_dataloader = dict(
    batch_size=256,
    dataset=dict(
        _delete_=True,
        type='SubsetDataset',
        start=0,
        stop=supernet_images,
        permute_seed=split_seed,
        dataset=dict(
            type='CustomDataset',
            data_root=data_root,
            data_prefix='train',
            pipeline=train_pipeline)))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root=data_root,
        data_prefix='val',
        pipeline=test_pipeline))
test_dataloader = val_dataloader

# validation reports the max and min widths after BN recalibration
val_cfg = dict(type='SubnetValLoop', calibrate_bn_batches=10)
test_cfg = dict(type='SubnetTestLoop', calibrate_bn_batches=10)

custom_hooks = [
    # a retrained subnet's checkpoint carries its channel_cfg in its meta
    dict(type='ChannelCfgMetaHook'),
    # --resume continues with the random numbers of an uninterrupted run
    dict(type='RandomStateHook'),
]
# searches compare subnets: runs must be repeatable
randomness = dict(seed=0, deterministic=False)
