# AutoSlim supernet of a classifier config you already have: here
# mmpretrain's ResNet-18 (CIFAR stem) on CIFAR-10, whose files are in
# mmpretrain's layout (data/cifar10/cifar-10-batches-py/). Put the path of
# your own config in `_base_`; everything else of it (model, data, schedule,
# runtime) is kept. See docs/your_model_your_data.md.
_base_ = ['mmpretrain::resnet/resnet18_8xb16_cifar10.py']

# the size the pipelines give: CIFAR's own 32x32
input_shape = (3, 32, 32)
# CIFAR-10's training files are in random class order: the last 5000 of
# the 50000 images are a fair held-out set for the search
supernet_images = 45000

model = dict(
    _delete_=True,
    type='AutoSlim',
    architecture=_base_.model,
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

# one device, batch 128: the total batch the schedule's lr is for
train_dataloader = dict(
    batch_size=128,
    dataset=dict(
        _delete_=True,
        type='SubsetDataset',
        start=0,
        stop=supernet_images,
        dataset=_base_.train_dataloader.dataset))

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
