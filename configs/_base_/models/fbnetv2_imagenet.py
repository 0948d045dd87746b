# FBNetV2's search space (FBNetV2SearchSpace, arXiv:2004.05565) for
# 224x224 ImageNet, at its max widths: stem 3x3 conv of 8, 12 or 16
# channels at stride 2; seven stages of 1, 2, 2, 3, 3, 3, 1 blocks
# (strides 1, 2, 2, 2, 1, 2, 1), each with its channel candidates; every
# block's expansion one of 0.75 .. 4.5 and its depthwise kernel 3 or 5;
# last conv 1280, 1600 or 1984; 1000 classes.
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
# - not in this space: the squeeze-excitation and h-swish variants of the
#   released models' later blocks (ReLU, no SE here).
_base_ = ['./image_classifier.py']

expansions = [0.75, 1.5, 2.25, 3.0, 3.75, 4.5]
model = dict(
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
    head=dict(in_channels=1984))
