# FBNetV2 DMaskingNAS channel search of MobileNetV2 1.0x (6.1M FLOPs at
# 32x32) on Fashion-MNIST for a 3M-FLOPs budget, on one device:
#   python tools/search.py \
#     configs/dmasking/dmasking_mbv2_1.0x_search_1xb64_fashion-mnist.py \
#     --work-dir work_dirs/dmasking        # --resume after a kill
# Weights train on training images [0, 40000), the architecture on
# [40000, 50000); the first 2 epochs train weights only, then every weight
# step is followed by an architecture step (the schedule:
# _base_/schedules/fashion_mnist_bs64_dmasking.py). Candidates: eighths of
# each group's width, multiples of 8. Writes derived.yaml: retrain it with
# the AutoSlim subnet config (any channel_cfg of this model):
#   python tools/train.py \
#     configs/autoslim/autoslim_mbv2_1.0x_subnet_1xb64_fashion-mnist.py \
#     --cfg-options model.channel_cfgs=work_dirs/dmasking/derived.yaml
_base_ = [
    '../_base_/models/mobilenet_v2_fashion_mnist.py',
    '../_base_/schedules/fashion_mnist_bs64_dmasking.py',  # + data
    '../_base_/algorithms/dmasking.py',  # + loops, runtime
]

model = dict(_base_.algorithm, _delete_=True, architecture=_base_.model,
             target=3e6,
             # candidates: eighths of each group's width, multiples of 8
             mutator=dict(_base_.algorithm.mutator,
                          width_ratios=[i / 8 for i in range(1, 9)],
                          divisor=8,
                          min_width=8))

# BN statistics recalibrated on 10 training batches for validation
val_cfg = dict(calibrate_bn_batches=10)
test_cfg = dict(calibrate_bn_batches=10)

default_hooks = dict(checkpoint=dict(max_keep_ckpts=1))
