# FBNetV2 DMaskingNAS channel search for a MobileNetV2 1.0x-sized network
# (300M FLOPs at 224x224, the 1.0x model has 300.8M) on ImageNet-1k,
# 8 GPUs x 64 images:
#   python -m torch.distributed.run --nproc_per_node=8 tools/search.py \
#       configs/dmasking/dmasking_mbv2_1.4x_search_8xb64_in1k.py \
#       --launcher pytorch --work-dir work_dirs/dmasking_in1k
# The space is MobileNetV2 1.4x (585M FLOPs; every group's max) down to 1/4
# of every width, so the 300M budget can move channels between layers both
# ways rather than only shrink the 1.0x model.
#
# FBNetV2's recipe (_base_/schedules/imagenet_bs512_dmasking.py): SGD
# (momentum 0.9, cosine lr) on the weights, Adam (lr 0.01, weight decay
# 5e-4) on the architecture, Gumbel temperature 5.0 annealed x0.956 per
# epoch over 90 epochs, the first 8 epochs train the weights only. The
# training set is split 80/20 (a fixed random permutation, so every class
# is in both): the weights train on 80%, the architecture on the other
# 20%; the ImageNet validation set is untouched until the derived network
# is retrained.
#
# Resolution search (optional): add candidate input sizes, all <= 224, e.g.
#   --cfg-options model.resolutions=[160,192,224]
# derived.yaml then carries `resolution:` and its FLOPs at that size.
#
# Retrain the derived network (a SlimmableNetwork config with one
# channel_cfg, as configs/autoslim/autoslim_mbv2_1.5x_subnet_8xb256_in1k.py
# for the 1.5x model):
#   --cfg-options model.channel_cfgs=work_dirs/dmasking_in1k/derived.yaml
_base_ = [
    '../_base_/models/mobilenet_v2_1.5x_imagenet.py',
    '../_base_/schedules/imagenet_bs512_dmasking.py',  # + data, 80/20
    '../_base_/algorithms/dmasking.py',  # + loops, runtime
]

model = dict(
    _base_.algorithm,
    _delete_=True,
    target=300e6,  # the cost on the argmax network (cost_network='derived')
    architecture=dict(
        _base_.model,
        backbone=dict(type='MobileNetV2', widen_factor=1.4),
        head=dict(_base_.model.head, in_channels=1792)),
    mutator=dict(
        _base_.algorithm.mutator,
        input_shape=(3, 224, 224),
        # candidate widths: these fractions of each group's max (1.4x),
        # rounded to multiples of 8
        width_ratios=[0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0],
        divisor=8,
        min_width=8))

default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2))
