# AutoSlim supernet of MobileNetV2 1.5x on ImageNet-1k, 8 GPUs x 256
# images (total batch 2048), 50 epochs: the OpenMMLab AutoSlim recipe.
# Every step trains 4 subnets by the sandwich rule (max, min, 2 random
# widths) with in-place distillation: the max width learns the labels
# (label smoothing 0.1, set in the model's head), the other three learn
# its detached soft predictions. Validation reports the max and the min
# width after recalibrating BN on training batches.
#
#   bash tools/dist_train.sh THIS_CONFIG 8 \
#       --work-dir work_dirs/autoslim_supernet
#
# Held-out split. The greedy search (the search config) scores subnets on
# 50000 *training* images that the supernet never trains on, as in the
# AutoSlim paper; the ImageNet validation set stays for the final numbers.
# mmpretrain's ImageNet keeps the line order of its annotation file
# (without one, the order of its sorted folder scan), so the order is
# fixed -- but it is grouped by class: meta/train.txt lists all of
# n01440764 (label 0) first and n15075141 (label 999) last. A contiguous
# slice, such as a SubsetDataset tail, would hold only the last ~39
# classes. Instead the first 50 images of every class (50 x 1000 = 50000)
# go to a held-out annotation file and the other 1231167 to the
# supernet's. Make both once (deterministic, any line order):
#   cd data/imagenet/meta && awk '{ f = ++n[$NF] <= 50 ? "heldout" : \
#       "supernet"; print > ("train_autoslim_" f ".txt") }' train.txt
_base_ = [
    '../_base_/models/mobilenet_v2_1.5x_imagenet.py',
    '../_base_/schedules/imagenet_bs2048_autoslim.py',  # + data
    '../_base_/algorithms/autoslim.py',  # + loops, runtime
]

model = dict(_base_.algorithm, _delete_=True, architecture=_base_.model,
             mutator=dict(
                 _base_.algorithm.mutator,
                 input_shape=(3, 224, 224),
                 # candidate widths 2/12, 3/12, ..., 12/12 of each group's
                 # max, rounded to multiples of 8 (OpenMMLab's AutoSlim: the
                 # 1/12 step of the mutator default, without its narrowest
                 # 1/12 width)
                 width_ratios=[i / 12 for i in range(2, 13)]))

# The supernet trains on the training set minus the held-out images.
train_dataloader = dict(
    dataset=dict(ann_file='meta/train_autoslim_supernet.txt'))
# What the search scores subnets on (see the search config).
heldout_dataset = dict(
    type=_base_.dataset_type,
    data_root=_base_.data_root,
    split='train',
    ann_file='meta/train_autoslim_heldout.txt',
    pipeline=_base_.test_pipeline)

# BN statistics of a width are recomputed on 16 training batches
# (16 x 256 = 4096 images per GPU) before it is evaluated.
val_cfg = dict(type='SubnetValLoop', calibrate_bn_batches=16)
test_cfg = dict(type='SubnetTestLoop', calibrate_bn_batches=16)

max_epochs = 50
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = dict(end=max_epochs)
