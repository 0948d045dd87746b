# Trains a DNAS result of FBNet's ImageNet space from scratch on 8 GPUs:
#   bash tools/dist_train.sh configs/dnas/dnas_fbnet_retrain_8xb32_in1k.py 8 \
#     --cfg-options model.channel_cfgs=work_dirs/dnas_in1k/derived.yaml
# with the MobileNetV2 recipe (SGD lr 0.045 at batch 256, decayed x0.98
# every epoch, weight decay 4e-5, 300 epochs) at 224x224.
_base_ = [
    '../_base_/models/fbnet_imagenet.py',
    '../_base_/retrain_imagenet_fbnet.py',  # data, SGD, SlimmableNetwork
]

# model.channel_cfgs: the derived.yaml, set on the command line
model = dict(_base_.algorithm, _delete_=True, architecture=_base_.model)
