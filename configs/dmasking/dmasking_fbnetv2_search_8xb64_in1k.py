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
# The space, and where its numbers come from:
# _base_/models/fbnetv2_imagenet.py. Chosen here:
# - resolutions 160, 192, 224 (the released models run at 128-288); each
#   <= the 224 training crop, which the search sub-samples.
# - the additive loss with a 300M-FLOPs target (FBNet's
#   CE * 0.2 * log(FLOPs)^0.6: loss_form='multiplicative').
# The recipe (_base_/schedules/imagenet_bs512_dmasking.py, as
# dmasking_mbv2_1.4x_search_8xb64_in1k.py): 90 epochs, the first 8 weights
# only, SGD + cosine on the weights, Adam lr 0.01 / weight decay 5e-4 on
# the architecture, Gumbel temperature 5.0 x0.956 per epoch, an 80/20
# split of the training set (fixed random permutation).
_base_ = [
    '../_base_/models/fbnetv2_imagenet.py',
    '../_base_/schedules/imagenet_bs512_dmasking.py',  # + data, 80/20
    '../_base_/algorithms/dmasking.py',  # + loops, runtime
]

model = dict(_base_.algorithm, _delete_=True, architecture=_base_.model,
             target=300e6,
             resolutions=[160, 192, 224],
             cost_network='expected',
             mutator=dict(type='ChannelMutator', input_shape=(3, 224, 224)))

default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2))
