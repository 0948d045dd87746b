# DMaskingNAS in FBNetV2's search space on ImageNet-1k, 8 GPUs x 64 images
# (not run here):
#   python -m torch.distributed.run --nproc_per_node=8 tools/search.py \
#       configs/dmasking/dmasking_fbnetv2_search_8xb64_in1k.py \
#       --launcher pytorch --work-dir work_dirs/dmasking_fbnetv2_in1k
# then export the derived network with the search's checkpoint:
#   python tools/export_subnet.py \
#       configs/dmasking/dmasking_fbnetv2_search_8xb64_in1k.py \
#       --checkpoint work_dirs/dmasking_fbnetv2_in1k/epoch_90.pth \
#       --channel-cfg work_dirs/dmasking_fbnetv2_in1k/derived.yaml \
#       -o fbnetv2.pth --onnx fbnetv2.onnx
#
# Searched jointly (FBNetV2, arXiv:2004.05565): every stage's
# width (channel masks; one choice per stage, whose blocks share the
# residual stream), every block's expansion (channel masks on its
# expansion layer), every block's depthwise kernel (3 or 5, a Gumbel block
# choice as in FBNet) and the input resolution (interleaved zero padding),
# with the effective-shape cost: the expectation of the FLOPs over the
# Gumbel weights of widths, kernels and resolutions (cost_network=
# 'expected', the paper's).
#
# Where the numbers come from. The stored copy of the paper that could be
# read for this toolbox holds only its abstract, so its search-space
# table could not be checked number by number; what is not the paper's
# own is marked "chosen here".
# - expansions 0.75 .. 4.5 in steps of 0.75, counted from the widest input
#   of the space (not the chosen input): FBNetV2's search space as its
#   authors quote it (facebookresearch/mobile-vision issue #22, "expansion
#   (0.75, 4.5, 0.75)"; "the expansion ratio in the search space is based
#   on the maximum available #Channels").
# - kernels 3 and 5: the kernel sizes of the released FBNetV2 models
#   (ir_k3 / ir_k5 blocks in mobile-vision's fbnet_modeldef_cls_fbnetv2.py).
# - stages (blocks, strides): the layout of the released FBNetV2 models:
#   3x3 stem stride 2; 1 block stride 1; 2 blocks stride 2; 2 blocks
#   stride 2; 6 blocks stride 2 whose width changes after the third (here a
#   stride-2 stage of 3 and a stride-1 stage of 3); 4 blocks stride 2 whose
#   width changes at the fourth (here 3 + 1); a last 1x1 conv.
# - channel candidates per stage: chosen here, spanning the widths of the
#   released models and a little beyond (the last stage up to FBNet's
#   352), in multiples of 8 (their width divisor; 4 in the first two
#   stages). The first stage keeps expansion 1 (as the released models'
#   first block). The space spans 49M-408M FLOPs at 224x224 (cheapest:
#   every first candidate and 3x3 kernels; widest: every last and 5x5).
# - last conv 1280, 1600 or 1984: chosen here (the released models end at
#   1280-1600, FBNet at 1984).
# - resolutions 160, 192, 224: chosen here (the released models run at
#   128-288); each <= the 224 training crop, which the search sub-samples.
# - not in this space: the squeeze-excitation and h-swish variants of the
#   released models' later blocks (ReLU, no SE here).
# - recipe (as dmasking_mbv2_1.4x_search_8xb64_in1k.py): 90 epochs, the
#   first 8 weights only, SGD + cosine on the weights, Adam lr 0.01 /
#   weight decay 5e-4 on the architecture, Gumbel temperature 5.0 x0.956
#   per epoch, an 80/20 split of the training set (fixed random
#   permutation); the additive loss with a 300M-FLOPs target is chosen
#   here (FBNet's CE * 0.2 * log(FLOPs)^0.6: loss_form='multiplicative').
_base_ = [
    '../_base_/datasets/imagenet_bs32.py',
    '../_base_/schedules/gumbel_search.py',
    '../_base_/search_runtime.py',  # + the ChannelSearchDDP wrapper
]

expansions = [0.75, 1.5, 2.25, 3.0, 3.75, 4.5]
model = dict(
    type='DMaskingNAS',
    architecture=dict(
        type='ImageClassifier',
        backbone=dict(
            type='FBNetV2SearchSpace',
            stages=[
                dict(blocks=1, stride=1, channels=[8, 12, 16],
                     expansions=[1], kernels=[3, 5]),
                dict(blocks=2, stride=2, channels=[16, 20, 24, 28, 32],
                     expansions=expansions, kernels=[3, 5]),
                dict(blocks=2, stride=2, channels=[24, 32, 40, 48, 56],
                     expansions=expansions, kernels=[3, 5]),
                dict(blocks=3, stride=2,
                     channels=[48, 56, 64, 72, 80, 88, 96],
                     expansions=expansions, kernels=[3, 5]),
                dict(blocks=3, stride=1,
                     channels=[64, 72, 80, 88, 96, 104, 112, 120, 128],
                     expansions=expansions, kernels=[3, 5]),
                dict(blocks=3, stride=2,
                     channels=[112, 128, 144, 160, 176, 192, 208, 224],
                     expansions=expansions, kernels=[3, 5]),
                dict(blocks=1, stride=1,
                     channels=[184, 216, 248, 280, 312, 352],
                     expansions=expansions, kernels=[3, 5]),
            ],
            stem_channels=[8, 12, 16],
            stem_stride=2,
            last_channels=[1280, 1600, 1984],
            divisor=8),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=1000,
            in_channels=1984,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            topk=(1, 5))),
    mutator=dict(type='ChannelMutator', input_shape=(3, 224, 224)),
    resolutions=[160, 192, 224],
    cost_metric='flops',
    loss_form='additive',
    cost_weight=2.0,
    target=300e6,
    tau=5.0,
    cost_network='expected')

train_set = _base_.train_dataloader.dataset
num_train = 1281167  # ImageNet-1k training images
split = num_train * 4 // 5
train_dataloader = dict(
    batch_size=64,
    dataset=dict(_delete_=True, type='SubsetDataset', start=0, stop=split,
                 permute_seed=0, dataset=train_set))
val_dataloader = dict(batch_size=64)
test_dataloader = val_dataloader

train_cfg = dict(
    warmup_epochs=8,
    val_interval=5,
    arch_dataloader=dict(
        batch_size=64,
        num_workers=5,
        dataset=dict(
            type='SubsetDataset', start=split, stop=None, permute_seed=0,
            dataset=train_set)))

optim_wrapper = dict(
    architecture=dict(optimizer=dict(lr=0.2, weight_decay=4e-5)))
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2))
auto_scale_lr = dict(base_batch_size=512)

search_loop = dict(type='DMaskingSearchLoop')
