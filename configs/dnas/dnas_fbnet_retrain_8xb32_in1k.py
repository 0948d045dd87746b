# Trains a DNAS result of FBNet's ImageNet space from scratch on 8 GPUs:
#   bash tools/dist_train.sh configs/dnas/dnas_fbnet_retrain_8xb32_in1k.py 8 \
#     --cfg-options model.channel_cfgs=work_dirs/dnas_in1k/derived.yaml
# with the MobileNetV2 recipe (SGD lr 0.045 at batch 256, decayed x0.98
# every epoch, weight decay 4e-5, 300 epochs) at 224x224.
_base_ = [
    '../_base_/models/fbnet_imagenet.py',
    '../_base_/datasets/imagenet_bs32.py',
    '../_base_/algorithms/slimmable.py',  # + loops, runtime
    '../_base_/schedules/imagenet_bs256_fbnet_retrain.py',
]

# model.channel_cfgs: the derived.yaml, set on the command line
model = dict(_base_.algorithm, _delete_=True, architecture=_base_.model,
             mutator=dict(type='ChannelMutator', input_shape=(3, 224, 224)))
# the last checkpoints are kept; none is chosen by its validation (test)
# accuracy
default_hooks = dict(checkpoint=dict(max_keep_ckpts=2))
