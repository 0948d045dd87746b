# FBNet's DNAS over an FBNetSearchSpace backbone, its cost term the
# latency read from a lookup table (tools/build_latency_lut.py), trained by
# the schedule of the differentiable searches
# (schedules/differentiable_search.py), plus the runtime of the toolbox's
# algorithm configs (with the ChannelSearchDDP wrapper). A config wraps its
# classifier in it and sets the table, the loss form and the target:
#   model = dict(_base_.algorithm, _delete_=True, architecture=_base_.model,
#                latency_table=..., latency_device=..., loss_form=...)
_base_ = ['../schedules/differentiable_search.py', '../search_runtime.py']

algorithm = dict(
    type='DNAS',
    input_shape=(3, 32, 32),
    cost_metric='latency',
    tau=5.0)

# the derived network is validated and tested with its BN statistics
# recalibrated on 50 training batches
val_cfg = dict(type='SubnetValLoop', calibrate_bn_batches=50)
test_cfg = dict(type='SubnetTestLoop', calibrate_bn_batches=50)
