# AutoSlim's supernet training (sandwich rule with in-place distillation)
# over widths in eighths, plus the runtime of the toolbox's algorithm
# configs (with the ChannelSearchDDP wrapper). A config wraps its
# classifier in it:
#   model = dict(_base_.algorithm, _delete_=True, architecture=_base_.model)
_base_ = ['../search_runtime.py']

algorithm = dict(
    type='AutoSlim',
    mutator=dict(
        type='ChannelMutator',
        input_shape=(3, 32, 32),
        width_ratios=[i / 8 for i in range(1, 9)],
        divisor=8,
        min_width=8),
    num_samples=4,
    distill=True)

# every subnet (max, min) is validated and tested with its BN statistics
# recalibrated on 10 training batches
val_cfg = dict(type='SubnetValLoop', calibrate_bn_batches=10)
test_cfg = dict(type='SubnetTestLoop', calibrate_bn_batches=10)
