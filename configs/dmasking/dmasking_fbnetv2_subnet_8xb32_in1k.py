# Trains the network a DMaskingNAS search of FBNetV2's ImageNet space
# (dmasking_fbnetv2_search_8xb64_in1k.py) derived, from scratch on 8 GPUs,
# as a static network: its widths, its kernels (derived.yaml's blocks:)
# and its searched resolution (inputs sub-sampled to it):
#   bash tools/dist_train.sh \
#     configs/dmasking/dmasking_fbnetv2_subnet_8xb32_in1k.py 8 \
#     --cfg-options \
#     model.channel_cfgs=work_dirs/dmasking_fbnetv2_in1k/derived.yaml
# with the MobileNetV2 recipe FBNet retrains with (SGD lr 0.045 at batch
# 256, decayed x0.98 every epoch, weight decay 4e-5, 300 epochs); then
# export it (the checkpoint holds its channel_cfg):
#   python tools/export_subnet.py \
#     configs/dmasking/dmasking_fbnetv2_subnet_8xb32_in1k.py \
#     --checkpoint WORK_DIR/epoch_300.pth -o fbnetv2.pth --onnx fbnetv2.onnx
_base_ = [
    '../_base_/models/fbnetv2_imagenet.py',
    '../_base_/retrain_imagenet_fbnet.py',  # data, SGD, SlimmableNetwork
]

# model.channel_cfgs: the derived.yaml, set on the command line
model = dict(_base_.algorithm, _delete_=True, architecture=_base_.model)
