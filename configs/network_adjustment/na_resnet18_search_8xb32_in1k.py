# Network Adjustment of ResNet-18 on ImageNet, 10 rounds as in the paper
# (ResNet-18 70.31 -> 71.22 top-1 at 1.81G FLOPs; "0.8x" 69.41 at 1.17G).
# The paper's protocol (its authors' code,
# _base_/search_loops/network_adjustment.py), the FURs measured on the
# 50000 held-out training images (5 dropout repetitions). On 8 GPUs:
#   python -m torch.distributed.run --nproc_per_node=8 tools/search.py \
#       configs/network_adjustment/na_resnet18_search_8xb32_in1k.py \
#       --launcher pytorch --work-dir work_dirs/na_r18
# The per-round schedule (5 epochs, cosine) is our choice for cost, the
# paper's is not reproduced here; lr 0.1 and weight decay 1e-5 follow the
# authors' ImageNet command (lr 0.2 at batch 512). "searched 0.8x" is the same
# adjustment of the uniform 0.8x network (work dir x0.8/).
# search_loop.protocol=finetune (the toolbox's first protocol) fine-tunes
# the previous round's weights instead and can start from a pretrained
# checkpoint (e.g. mmpretrain's resnet18_8xb32_in1k, given after the
# config), which fills the leading channels of the 2x-wide supernet (it
# was set up with optim_wrapper.optimizer.lr=0.01 weight_decay=1e-4).
#
# Held-out images: the split of configs/autoslim/README.md (the first 50
# images of every class in meta/train_autoslim_heldout.txt, the rest in
# meta/train_autoslim_supernet.txt), made once with its awk line.
_base_ = [
    '../_base_/models/resnet18_imagenet.py',
    '../_base_/datasets/imagenet_bs32.py',
    '../_base_/algorithms/network_adjustment.py',  # + loop, runtime
]

# Whole channels (divisor 1), as the authors' code rounds the widths, so a
# move is the paper's 0.1 c_init (6.4-51.2 channels here);
# --cfg-options model.mutator.divisor=8 keeps widths in multiples of 8
# (a move is then rounded to 8-channel steps).
model = dict(_base_.algorithm, _delete_=True, architecture=_base_.model,
             mutator=dict(_base_.algorithm.mutator, divisor=1,
                          input_shape=(3, 224, 224)))

train_dataloader = dict(
    dataset=dict(ann_file='meta/train_autoslim_supernet.txt'))

# epochs of training per round
max_epochs = 5
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-5))
param_scheduler = dict(
    type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
    convert_to_iter_based=True)
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
auto_scale_lr = dict(base_batch_size=256)
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1))

search_loop = dict(
    rounds=10,
    dropout=dict(repeats=5),
    num_batches=None,
    dataloader=dict(
        batch_size=100,
        num_workers=5,
        persistent_workers=False,
        dataset=dict(
            type=_base_.dataset_type,
            data_root=_base_.data_root,
            split='train',
            # 50 images of every class (BN uses running statistics here,
            # so the class-grouped order does not matter)
            ann_file='meta/train_autoslim_heldout.txt',
            pipeline=_base_.test_pipeline)))
