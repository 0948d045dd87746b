# Retraining of AutoSlim MobileNetV2 1.5x subnets on ImageNet-1k, 8 GPUs x
# 256, 300 epochs (the base schedule), on the whole training set.
# The channel_cfgs train jointly as one slimmable network: shared conv and
# linear weights, private BN per subnet (switchable BN), each subnet on
# the labels with label smoothing 0.1 (no distillation). The default is
# the three official AutoSlim subnets (504.9M / 305.1M / 206.8M conv +
# linear MACs, labelled 530M / 320M / 220M by OpenMMLab); to retrain your
# own search results, widest first:
#   bash tools/dist_train.sh THIS_CONFIG 8 \
#       --work-dir work_dirs/autoslim_subnet \
#       --cfg-options model.channel_cfgs=a.yaml,b.yaml,c.yaml
# One channel_cfg trains (and tests) that subnet alone, as a static network;
# that is how a checkpoint split by tools/model_converters/split_checkpoint.py
# is tested. Validation reports every subnet.
_base_ = [
    '../_base_/models/mobilenet_v2_1.5x_imagenet.py',
    '../_base_/schedules/imagenet_bs2048_autoslim.py',  # + data
    '../_base_/algorithms/slimmable.py',  # + loops, runtime
]

model = dict(_base_.algorithm, _delete_=True, architecture=_base_.model,
             mutator=dict(type='ChannelMutator', input_shape=(3, 224, 224)),
             # paths relative to the repository root
             channel_cfgs=[
                 'configs/autoslim/autoslim_mbv2_1.5x_flops-530M.yaml',
                 'configs/autoslim/autoslim_mbv2_1.5x_flops-320M.yaml',
                 'configs/autoslim/autoslim_mbv2_1.5x_flops-220M.yaml',
             ])

# Each subnet is validated and tested (algorithms/slimmable.py) with its
# own BN statistics, accumulated while it trained.
