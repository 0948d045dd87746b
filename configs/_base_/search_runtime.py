# Runtime of the toolbox's algorithm configs (supernets, searches,
# slimmable retraining): default_runtime.py plus the model wrapper of
# distributed runs (--launcher pytorch). ChannelSearchDDP hands the whole
# train step to the algorithm, which runs one forward and backward per
# subnet and averages the gradients itself; on CPUs (gloo) it also works.
_base_ = ['./default_runtime.py']

model_wrapper_cfg = dict(type='ChannelSearchDDP')
