# Retrains the network a search of the reduced FBNetV2 space derived
# (dmasking_fbnetv2-small_search_1xb64_fashion-mnist.py) from scratch, as a
# static network: its widths, its kernels (derived.yaml's blocks:) and, if
# searched, its resolution (inputs sub-sampled to it):
#   python tools/train.py \
#     configs/dmasking/dmasking_fbnetv2-small_subnet_1xb64_fashion-mnist.py \
#     --cfg-options \
#     model.channel_cfgs=work_dirs/dmasking_fbnetv2_fmnist/derived.yaml
# then export it (the checkpoint holds its channel_cfg):
#   python tools/export_subnet.py \
#     configs/dmasking/dmasking_fbnetv2-small_subnet_1xb64_fashion-mnist.py \
#     --checkpoint WORK_DIR/epoch_30.pth -o subnet.pth --onnx subnet.onnx
_base_ = [
    '../_base_/models/fbnetv2-small_fashion_mnist.py',
    '../_base_/retrain_fashion_mnist.py',  # data, SGD, SlimmableNetwork
]

# model.channel_cfgs: the derived.yaml, set on the command line
model = dict(_base_.algorithm, _delete_=True, architecture=_base_.model)
