# ReXNet's channel parameterization search in the paper's setting, sized
# for a CPU: the paper searched a plain inverted-bottleneck network
# (MobileNetV2's block, no squeeze-excitation, ReLU6) with a 16-channel
# stem on CIFAR-style 32x32 images, not ReXNet itself and not ImageNet.
# Here the images are Fashion-MNIST at 32x32:
#   python tools/search.py configs/rexnet/\
#     rexnet_search_plain-ib-stem16_1xb64_fashion-mnist.py \
#     --work-dir work_dirs/rexnet_paper_fmnist
# (the config path is one word: no space after the slash)
# 8 blocks in six stages of 1, 1, 1, 2, 1, 2 (strides 1, 2, 2, 2, 1, 2),
# stem 3x3 conv stride 1 with 16 channels, last conv 320 channels; the
# search samples the 8 block widths as a * f(i) + b, non-decreasing, within
# 3.0-4.5M FLOPs and 0.3M params, trains each candidate 2 epochs on 5000
# training images per seed and ranks them on 2000 held-out training
# images (the test files stay untouched). The depth (8 blocks) and the
# second stage's stride 2 are this CPU setting's, not the paper's.
_base_ = [
    '../_base_/datasets/fashion_mnist_bs64_heldout.py',  # [0, 50000)
    '../_base_/schedules/fashion_mnist_sgd.py',
    '../_base_/search_runtime.py',
]

last_channels = 320
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='PlainInvertedBottleneckNet',
        stage_blocks=(1, 1, 1, 2, 1, 2),
        stage_strides=(1, 2, 2, 2, 1, 2),
        stem_channels=16,
        stem_stride=1,
        expand_ratio=6,
        out_channels=last_channels),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=last_channels,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5)))

train_dataloader = dict(dataset=dict(stop=5000))
# candidates are ranked on held-out training images
val_dataloader = dict(
    dataset=dict(_delete_=True, type='SubsetDataset', start=50000, stop=52000,
                 dataset=dict(_base_.train_dataloader.dataset.dataset,
                              pipeline=_base_.test_pipeline)))

# the short schedule every candidate trains for
max_epochs = 2
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
param_scheduler = dict(end=max_epochs)
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1))

search_loop = dict(
    type='ChannelParameterizationSearchLoop',
    num_candidates=10,
    seeds=2,
    max_flops=4.5e6,
    max_params=0.3e6,
    min_flops=3.0e6,
    first_channels=(8, 32),
    increase=(16, 96),
    max_breakpoints=2,
    stagewise_prob=0.2,
    divisor=8,
    input_shape=(3, 32, 32),
    patience=None,
    metric='accuracy/top1')
