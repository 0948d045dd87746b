# Fashion-MNIST, 10 classes, 60000 train / 10000 test images of 28x28 gray.
# Make data/fashion_mnist first: python tools/prepare_data.py fashion_mnist
#
# Images are resized to 32x32 and replicated to 3 channels, so ImageNet
# models (MobileNetV2's stem takes 3 channels) run unchanged.
#
# mmpretrain's FashionMNIST picks the train or the test files by
# `test_mode`, not by `split`: val/test need test_mode=True, or they
# silently evaluate on the training images.
#
# Searches hold out the last 10000 training images (never trained on) to
# score subnets on, keeping the test files for the final numbers:
# fashion_mnist_bs64_heldout.py.
dataset_type = 'FashionMNIST'
data_root = 'data/fashion_mnist'

data_preprocessor = dict(
    num_classes=10,
    # mean/std of the training images on 0-255, replicated to 3 channels
    mean=[72.94] * 3,
    std=[90.02] * 3,
    to_rgb=False,
)

train_pipeline = [
    dict(type='Resize', scale=(32, 32)),
    dict(type='GrayToRGB'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='Resize', scale=(32, 32)),
    dict(type='GrayToRGB'),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split='train',
        test_mode=False,
        download=False,
        pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)
# The test files, loaded like the training ones but with the test pipeline
# and in order.
val_dataloader = dict(
    train_dataloader,
    dataset=dict(
        train_dataloader['dataset'],
        split='test',
        test_mode=True,
        pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, 5))

test_dataloader = val_dataloader
test_evaluator = val_evaluator
