# Network Adjustment's supernet: the classifier with every group up to
# twice its width (multiples of 8), the search loop's shared settings
# (search_loops/network_adjustment.py) and the runtime of the toolbox's
# algorithm configs (with the ChannelSearchDDP wrapper). A config wraps its
# classifier in it:
#   model = dict(_base_.algorithm, _delete_=True, architecture=_base_.model)
_base_ = ['../search_loops/network_adjustment.py', '../search_runtime.py']

algorithm = dict(
    type='ChannelSupernet',
    mutator=dict(
        type='ChannelMutator',
        input_shape=(3, 32, 32),
        # groups may grow to 2x their width; widths stay multiples of 8
        width_cap=2.0,
        divisor=8,
        min_width=8))
