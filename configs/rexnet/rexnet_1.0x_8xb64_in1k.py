# ReXNet 1.0x on ImageNet-1k, 8 GPUs x 64 = batch 512, 400 epochs.
#   bash tools/dist_train.sh configs/rexnet/rexnet_1.0x_8xb64_in1k.py 8 --amp
#
# The recipe of the paper and of the official repository (clovaai/rexnet):
# - paper (arXiv:2007.00992, training setup): random crops of 8-100%,
#   SGD with momentum 0.9, batch 512, lr 0.5 warmed up linearly over the
#   first 5 epochs then cosine-decayed, weight decay 1e-5;
# - official README command (timm's train.py): --opt sgd (Nesterov in
#   timm) --lr 0.5 --weight-decay 1e-5 --batch-size 128 on 4 GPUs
#   --epochs 400 --sched cosine --remode pixel --reprob 0.2 --drop 0.2
#   --aa rand-m9-mstd0.5 --amp (the augmentation is in the dataset base).
# - timm's defaults that command relies on: label smoothing 0.1 (in the
#   model base), no weight decay on BN and biases, min lr 1e-5.
# Published: 77.9 top-1, 4.8M params, 0.40G FLOPs.
_base_ = [
    '../_base_/models/rexnet_1.0x_imagenet.py',
    '../_base_/datasets/imagenet_bs64_rexnet.py',
    '../_base_/schedules/imagenet_bs512_rexnet.py',
    '../_base_/default_runtime.py',
]
