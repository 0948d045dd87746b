# ReXNet channel parameterization search on ImageNet-1k with the ReXNet
# backbone itself (a toolbox setting: the paper searched on CIFAR-style data
# with a plain inverted-bottleneck network): an 18-block network whose
# block widths are sampled
# as a * f(i) + b (f piecewise linear in the block index, or stage-wise
# steps) within 0.36-0.40G FLOPs and 5.5M params, each trained briefly.
#   torchrun --nproc_per_node 8 tools/search.py \
#     configs/rexnet/rexnet_search_8xb64_in1k.py --launcher pytorch \
#     --work-dir work_dirs/rexnet_search_in1k
# With several ranks every rank trains its share of the (candidate, seed)
# runs on its own GPU, one network per GPU (batch 64, not 512), so the
# learning rate here is for batch 64.
#
# The split of the 18 blocks into stages, the number of candidates and
# seeds and the epochs per candidate are our choices, not the paper's.
_base_ = [
    '../_base_/models/image_classifier.py',
    '../_base_/datasets/imagenet_bs64_rexnet.py',
    # + the ChannelSearchDDP wrapper: it wraps the search's own (untrained)
    # model under --launcher pytorch, also on CPUs; every candidate trains
    # unwrapped, one per rank
    '../_base_/search_runtime.py',
]

model = dict(
    backbone=dict(
        type='ReXNet', widen_factor=1.0, stage_blocks=(1, 2, 2, 3, 4, 6)),
    head=dict(
        in_channels=1280,  # ReXNet's last conv: int(1280 * widen_factor)
        loss=dict(type='LabelSmoothLoss', mode='original',
                  label_smooth_val=0.1)))

# the short schedule every candidate trains for
max_epochs = 10
optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=0.0625, momentum=0.9, nesterov=True,
        weight_decay=1e-5),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=1,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1))

search_loop = dict(
    type='ReXNetSearchLoop',
    num_candidates=200,
    seeds=3,
    max_flops=0.40e9,
    max_params=5.5e6,
    min_flops=0.36e9,
    first_channels=(16, 48),
    increase=(100, 220),
    max_breakpoints=3,
    stagewise_prob=0.2,
    divisor=1,
    input_shape=(3, 224, 224),
    patience=3,
    metric='accuracy/top1')
