# ReXNet channel parameterization search on Fashion-MNIST, small enough
# for a CPU:
#   python tools/search.py configs/rexnet/\
#     rexnet_search_1xb64_fashion-mnist.py --work-dir work_dirs/rexnet_fmnist
# (the config path is one word: no space after the slash)
# An 8-block ReXNet (one or two blocks per stage) at 32x32; the stem (32
# channels) and the last conv (320 = 1280 x 0.25) are fixed, the search
# samples the 8 block widths as a * f(i) + b within 1.2-1.6M FLOPs and
# 0.3M params, trains each candidate 2 epochs on 5000 training images per
# seed and ranks them on 2000 held-out training images (the test files
# stay untouched).
_base_ = [
    '../_base_/models/image_classifier.py',
    # training on [0, 50000), validation on held-out [50000, 52000)
    '../_base_/datasets/fashion_mnist_bs64_heldout-val.py',
    '../_base_/schedules/fashion_mnist_sgd.py',
    # + the ChannelSearchDDP wrapper: it wraps the search's own (untrained)
    # model under --launcher pytorch, also on CPUs; every candidate trains
    # unwrapped, one per rank
    '../_base_/search_runtime.py',
]

widen_factor = 0.25
model = dict(
    backbone=dict(
        type='ReXNet',
        widen_factor=widen_factor,
        stage_blocks=(1, 1, 1, 2, 1, 2)),
    # ReXNet's last conv has int(1280 * widen_factor) channels
    head=dict(num_classes=10, in_channels=int(1280 * widen_factor)))

# candidates train on [0, 5000) and are ranked on the held-out images
train_dataloader = dict(dataset=dict(stop=5000))

# the short schedule every candidate trains for
max_epochs = 2
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
param_scheduler = dict(end=max_epochs)
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1))

search_loop = dict(
    type='ReXNetSearchLoop',
    num_candidates=10,
    seeds=2,
    max_flops=1.6e6,
    max_params=0.3e6,
    min_flops=1.2e6,
    first_channels=(8, 32),
    increase=(16, 96),
    max_breakpoints=2,
    stagewise_prob=0.2,
    divisor=8,
    input_shape=(3, 32, 32),
    patience=None,
    metric='accuracy/top1')
