# Retraining of searched ResNet-18 CIFAR-10 subnets from scratch, with the
# supernet's data and your config's schedule. One channel_cfg trains that
# subnet as a static network; several train jointly (shared weights,
# private BN per subnet):
#   python tools/train.py THIS_CONFIG --cfg-options model.channel_cfgs=a.yaml
_base_ = ['./autoslim_resnet18-cifar_supernet_1xb128_cifar10.py']

model = dict(
    _delete_=True,
    type='SlimmableNetwork',
    architecture=_base_.model.architecture,
    mutator=_base_.model.mutator,
    channel_cfgs=None,  # set on the command line
    distill=False)
# a retrained network keeps its own BN statistics
val_cfg = dict(_delete_=True, type='SubnetValLoop')
test_cfg = dict(_delete_=True, type='SubnetTestLoop')
