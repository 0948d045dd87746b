# Retrains a DNAS result of the reduced Fashion-MNIST space from scratch:
#   python tools/train.py \
#     configs/dnas/dnas_fbnet-small_retrain_1xb64_fashion-mnist.py \
#     --cfg-options model.channel_cfgs=work_dirs/dnas_fmnist/derived.yaml
# `channel_cfgs` takes the derived.yaml (or best.yaml, or any channel_cfg
# with `blocks:`); the network holds only those blocks. Export it as a
# static checkpoint and ONNX with (the checkpoint holds its channel_cfg)
#   python tools/export_subnet.py \
#     configs/dnas/dnas_fbnet-small_retrain_1xb64_fashion-mnist.py \
#     --checkpoint work_dirs/fbnet_fmnist_retrain/epoch_30.pth -o fbnet.pth \
#     --onnx fbnet.onnx
# The old key model.backbone.blocks=FILE still works, deprecated.
_base_ = [
    '../_base_/models/fbnet-small_fashion_mnist.py',
    '../_base_/retrain_fashion_mnist.py',  # data, SGD, SlimmableNetwork
]

# model.channel_cfgs: the derived.yaml, set on the command line
model = dict(_base_.algorithm, _delete_=True, architecture=_base_.model)
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1))
