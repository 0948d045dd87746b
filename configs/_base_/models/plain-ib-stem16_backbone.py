# The paper's search network for ReXNet's channel search, sized for a CPU:
# a plain inverted-bottleneck network (PlainInvertedBottleneckNet), 8
# blocks in six stages of 1, 1, 1, 2, 1, 2 (strides 1, 2, 2, 2, 1, 2), a
# 3x3 stem of 16 channels at stride 1 and a last conv of 320 channels. A
# backbone to put into a ReXNet config's classifier (its head's
# in_channels: last_channels):
#   model = dict(backbone=dict(_base_.plain_ib_backbone, _delete_=True),
#                head=dict(in_channels=_base_.last_channels))
last_channels = 320
plain_ib_backbone = dict(
    type='PlainInvertedBottleneckNet',
    stage_blocks=(1, 1, 1, 2, 1, 2),
    stage_strides=(1, 2, 2, 2, 1, 2),
    stem_channels=16,
    stem_stride=1,
    expand_ratio=6,
    out_channels=last_channels)
