# DMaskingNAS in a reduced FBNetV2 space (FBNetV2SearchSpace) on
# Fashion-MNIST, small enough to search on one CPU core in minutes:
#   python tools/search.py \
#     configs/dmasking/dmasking_fbnetv2-small_search_1xb64_fashion-mnist.py \
#     --work-dir work_dirs/dmasking_fbnetv2_fmnist   # --resume after a kill
# Searched jointly: the width of the stem, of every stage's residual stream
# and of the last conv, the expansion of every block (FBNetV2's candidates
# 0.75 .. 4.5 in steps of 0.75, of the block's widest input), the
# depthwise kernel of every block (3 or 5). The input resolution can be
# searched too (`--cfg-options 'model.resolutions=[24,28,32]'`), but every
# layer then runs once per candidate and a step took ~11x longer on our
# CPU, so this config leaves it out. The cost is the FLOPs of
# the derived (argmax) network, straight-through (cost_network='derived',
# the toolbox's default; 'expected' is FBNetV2's effective shape, the
# expectation over widths, kernels and resolutions). Writes derived.yaml
# (widths under channels:, kernels under blocks:, resolution:), which
# retrains with dmasking_fbnetv2-small_subnet_1xb64_fashion-mnist.py and
# also exports with the search's own checkpoint:
#   python tools/export_subnet.py \
#     configs/dmasking/dmasking_fbnetv2-small_search_1xb64_fashion-mnist.py \
#     --checkpoint work_dirs/dmasking_fbnetv2_fmnist/epoch_5.pth \
#     --channel-cfg work_dirs/dmasking_fbnetv2_fmnist/derived.yaml \
#     -o fbnetv2_small.pth --onnx fbnetv2_small.onnx
# The schedule is the MobileNetV2 search's
# (_base_/schedules/fashion_mnist_bs64_dmasking.py: optimizers, BN
# recalibration), on a tenth of its images and shorter (below).
_base_ = [
    '../_base_/models/fbnetv2-small_fashion_mnist.py',
    '../_base_/schedules/fashion_mnist_bs64_dmasking.py',  # + data
    '../_base_/algorithms/dmasking.py',  # + loops, runtime
]

model = dict(_base_.algorithm, _delete_=True, architecture=_base_.model,
             target=3e6)

# BN statistics recalibrated on 10 training batches for validation
val_cfg = dict(calibrate_bn_batches=10)
test_cfg = dict(calibrate_bn_batches=10)

# the dataset config's [0, 50000): weights on [0, 4000), the architecture
# on [4000, 5000) (FBNet's 80/20 split of the images used)
weights_split = dict(_base_.weights_split, stop=4000)
train_dataloader = dict(dataset=weights_split)

max_epochs = 5
train_cfg = dict(
    max_epochs=max_epochs,
    warmup_epochs=1,
    # a short schedule anneals faster than FBNet's x0.956: 5.0 -> 0.31 in
    # the last epoch. With x0.7 (1.2 in the last epoch) the derived network
    # scored 40.1% in the supernet against 81.4% (one run each,
    # configs/dmasking/README.md): the network trained on near-uniform
    # kernel mixtures, not on the kernels it derives.
    tau_decay=0.5,
    val_interval=max_epochs,
    arch_dataloader=dict(dataset=dict(weights_split, start=4000, stop=5000)))
param_scheduler = dict(architecture=dict(end=max_epochs))
# the derived network is validated on held-out training images
val_dataloader = dict(dataset=dict(
    _delete_=True, type='SubsetDataset', start=50000, stop=52000,
    dataset=dict(_base_.train_dataloader.dataset.dataset,
                 pipeline=_base_.test_pipeline)))
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1))
