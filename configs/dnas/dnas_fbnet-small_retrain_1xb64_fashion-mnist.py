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
    '../_base_/datasets/fashion_mnist_bs64.py',
    '../_base_/schedules/fashion_mnist_sgd.py',
    '../_base_/search_runtime.py',  # + the ChannelSearchDDP wrapper
]

model = dict(
    _delete_=True,
    type='SlimmableNetwork',
    architecture=_base_.model,
    mutator=dict(type='ChannelMutator', input_shape=(3, 32, 32)),
    channel_cfgs=None)  # set on the command line: the derived.yaml
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1))
