# Trains a DNAS result of FBNet's ImageNet space from scratch on 8 GPUs:
#   bash tools/dist_train.sh configs/dnas/dnas_fbnet_retrain_8xb32_in1k.py 8 \
#     --cfg-options model.channel_cfgs=work_dirs/dnas_in1k/derived.yaml
# with the MobileNetV2 recipe (SGD lr 0.045 at batch 256, decayed x0.98
# every epoch, weight decay 4e-5, 300 epochs) at 224x224.
_base_ = [
    '../_base_/models/fbnet_imagenet.py',
    '../_base_/datasets/imagenet_bs32.py',
    '../_base_/algorithms/slimmable.py',  # + loops, runtime
]

# model.channel_cfgs: the derived.yaml, set on the command line
model = dict(_base_.algorithm, _delete_=True, architecture=_base_.model,
             mutator=dict(type='ChannelMutator', input_shape=(3, 224, 224)))

max_epochs = 300
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.045, momentum=0.9, weight_decay=4e-5),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = dict(type='StepLR', by_epoch=True, step_size=1,
                       gamma=0.98)
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
# the last checkpoints are kept; none is chosen by its validation (test)
# accuracy
default_hooks = dict(checkpoint=dict(max_keep_ckpts=2))
auto_scale_lr = dict(base_batch_size=256)
