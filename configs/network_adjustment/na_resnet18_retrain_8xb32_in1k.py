# Retrains a Network Adjustment result of ResNet-18 from scratch with the
# standard ResNet-18 recipe (mmpretrain's resnet18_8xb32_in1k: SGD lr 0.1,
# momentum 0.9, weight decay 1e-4, lr x0.1 at epochs 30/60/90, 100 epochs,
# on the whole training set):
#   bash tools/dist_train.sh \
#       configs/network_adjustment/na_resnet18_retrain_8xb32_in1k.py 8 \
#       --cfg-options model.channel_cfgs=work_dirs/na_r18/final.yaml
# The network is the static subnet of the channel_cfg; the mutator is the
# search config's (width_cap, divisor), so its results validate.
_base_ = ['./na_resnet18_search_8xb32_in1k.py']

model = dict(type='SlimmableNetwork', channel_cfgs=None)
search_loop = None

train_dataloader = dict(dataset=dict(ann_file='meta/train.txt'))
optim_wrapper = dict(optimizer=dict(lr=0.1))
param_scheduler = dict(
    _delete_=True,
    type='MultiStepLR', by_epoch=True, milestones=[30, 60, 90], gamma=0.1)
train_cfg = dict(max_epochs=100, val_interval=1)
# the last checkpoints are kept; none is chosen by its validation (test)
# accuracy
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3))
