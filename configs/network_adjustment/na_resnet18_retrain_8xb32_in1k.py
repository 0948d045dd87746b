# Retrains a Network Adjustment result of ResNet-18 from scratch with the
# standard ResNet-18 recipe (mmpretrain's resnet18_8xb32_in1k: SGD lr 0.1,
# momentum 0.9, weight decay 1e-4, lr x0.1 at epochs 30/60/90, 100 epochs):
#   bash tools/dist_train.sh \
#       configs/network_adjustment/na_resnet18_retrain_8xb32_in1k.py 8 \
#       --cfg-options model.channel_cfgs=work_dirs/na_r18/final.yaml
_base_ = [
    '../_base_/models/resnet18_imagenet.py',
    '../_base_/datasets/imagenet_bs32.py',
    '../_base_/default_runtime.py',
]

model = dict(
    _delete_=True,
    type='SlimmableNetwork',
    architecture=_base_.model,
    # must match the search config's mutator (width_cap, divisor)
    mutator=dict(
        type='ChannelMutator',
        input_shape=(3, 224, 224),
        width_cap=2.0,
        divisor=8,
        min_width=8),
    channel_cfgs=None)
model_wrapper_cfg = dict(type='ChannelSearchDDP')

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[30, 60, 90], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=256)
default_hooks = dict(
    checkpoint=dict(save_best='auto', max_keep_ckpts=3))
