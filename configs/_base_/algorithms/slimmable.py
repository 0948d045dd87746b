# The retraining of every method's result (the one result contract): a
# SlimmableNetwork that takes the search's channel_cfg(s) as
# model.channel_cfgs, plus the runtime of the toolbox's algorithm configs
# (with the ChannelSearchDDP wrapper). A config wraps its classifier in it:
#   model = dict(_base_.algorithm, _delete_=True, architecture=_base_.model)
# (the mutator traces 32x32 inputs; ImageNet configs set 224).
_base_ = ['../search_runtime.py']

algorithm = dict(
    type='SlimmableNetwork',
    mutator=dict(type='ChannelMutator', input_shape=(3, 32, 32)),
    channel_cfgs=None,  # set on the command line: the search's result(s)
    distill=False)

# every subnet is validated and tested (one subnet: the usual metric names)
val_cfg = dict(type='SubnetValLoop')
test_cfg = dict(type='SubnetTestLoop')
