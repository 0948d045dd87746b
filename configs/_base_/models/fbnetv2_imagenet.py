# FBNetV2's search space (FBNetV2SearchSpace, arXiv:2004.05565) for
# 224x224 ImageNet, at its max widths: stem 3x3 conv of 16 channels at
# stride 2; six stages of 1, 3, 3, 3, 4, 4 blocks (strides 1, 2, 2, 2, 1,
# 2) whose output widths range over 12-16 (step 4), 16-28 (step 4), 16-40,
# 48-96, 72-128 and 112-216 (step 8); every block's expansion one of
# 0.75 .. 4.5 and its depthwise kernel 3 or 5; last 1x1 conv 1984; 1000
# classes.
#
# Where the numbers come from. The stored copies of the paper that could be
# read for this toolbox hold only its abstract, so its search-space table
# was not read number by number; the layout below is the one two public
# reimplementations of FBNetV2's search agree on, and the authors' own
# DMaskingNAS model defs are consistent with it.
# - stages, strides and width ranges: a public reimplementation's
#   `fbnetv2_supernet` model def with its per-stage options (2, 4, 4, 7,
#   8, 14 widths in steps of 4, 4, 8, 8, 8, 8 below 16, 28, 40, 96, 128,
#   216). A second one (UpStride's classification-api, `FBNet_MobileNetV2
#   Imagenet`) has the same strides, the same lower ends and steps and
#   blocks 1, 3, 3, 3, 3, 4, with smaller upper ends (24, 40, 80, 112,
#   184). The authors' released DMaskingNAS networks
#   (mobile-vision's fbnet_modeldef_cls_dmasking.py, `dmasking_f4` at 224)
#   have a 16-channel stem, a first block of expansion 1, 3 blocks at
#   56x56, 7 at 14x14 whose width changes after the third, 4 at 7x7 and a
#   last conv of 1984.
# - expansions 0.75 .. 4.5 in steps of 0.75, counted from the widest input
#   of the space (not the chosen input): FBNetV2's search space as its
#   authors quote it (facebookresearch/mobile-vision issue #22, "expansion
#   (0.75, 4.5, 0.75)"; "the expansion ratio in the search space is based
#   on the maximum available #Channels"). The first stage keeps
#   expansion 1 (both reimplementations and the released networks).
# - kernels 3 and 5: the kernel sizes of the released FBNetV2 and
#   DMaskingNAS networks (ir_k3 / ir_k5 blocks).
# - the space spans 61M-429M FLOPs at 224x224 (cheapest: every first
#   candidate and 3x3 kernels; widest: every last and 5x5).
# - not in this space: the squeeze-excitation and h-swish variants of the
#   released networks' later blocks (ReLU, no SE here), and a `skip`
#   choice per block (the released DMaskingNAS networks contain `skip`
#   blocks; depth is not searched here).
_base_ = ['./image_classifier.py']

expansions = [0.75, 1.5, 2.25, 3.0, 3.75, 4.5]
model = dict(
    backbone=dict(
        type='FBNetV2SearchSpace',
        stages=[
            dict(blocks=1, stride=1, channels=[12, 16],
                 expansions=[1], kernels=[3, 5]),
            dict(blocks=3, stride=2, channels=[16, 20, 24, 28],
                 expansions=expansions, kernels=[3, 5]),
            dict(blocks=3, stride=2, channels=[16, 24, 32, 40],
                 expansions=expansions, kernels=[3, 5]),
            dict(blocks=3, stride=2, channels=[48, 56, 64, 72, 80, 88, 96],
                 expansions=expansions, kernels=[3, 5]),
            dict(blocks=4, stride=1,
                 channels=[72, 80, 88, 96, 104, 112, 120, 128],
                 expansions=expansions, kernels=[3, 5]),
            dict(blocks=4, stride=2,
                 channels=[112, 120, 128, 136, 144, 152, 160,
                           168, 176, 184, 192, 200, 208, 216],
                 expansions=expansions, kernels=[3, 5]),
        ],
        stem_channels=16,
        stem_stride=2,
        last_channels=1984,
        divisor=8),
    head=dict(in_channels=1984))
