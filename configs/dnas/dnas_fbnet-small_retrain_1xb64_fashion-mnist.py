# Retrains a DNAS result of the reduced Fashion-MNIST space from scratch:
#   python tools/train.py \
#     configs/dnas/dnas_fbnet-small_retrain_1xb64_fashion-mnist.py \
#     --cfg-options model.backbone.blocks=work_dirs/dnas_fmnist/derived.yaml
# `blocks` takes the derived.yaml (or any channel_cfg with `blocks:`, or a
# mapping layers.<i> -> block name); the network holds only those blocks.
# Export it as a static checkpoint and ONNX with
#   python tools/export_subnet.py \
#     configs/dnas/dnas_fbnet-small_retrain_1xb64_fashion-mnist.py \
#     --channel-cfg work_dirs/dnas_fmnist/derived.yaml \
#     --checkpoint work_dirs/fbnet_fmnist_retrain/epoch_30.pth -o fbnet.pth \
#     --onnx fbnet.onnx \
#     --cfg-options model.backbone.blocks=work_dirs/dnas_fmnist/derived.yaml
_base_ = [
    '../_base_/models/fbnet-small_fashion_mnist.py',
    '../_base_/datasets/fashion_mnist_bs64.py',
    '../_base_/schedules/fashion_mnist_sgd.py',
    '../_base_/default_runtime.py',
]

model = dict(backbone=dict(blocks='work_dirs/dnas_fmnist/derived.yaml'))
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1))
