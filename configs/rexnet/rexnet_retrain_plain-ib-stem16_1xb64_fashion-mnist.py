# Retrains one network of the paper-setting search space
# (rexnet_search_plain-ib-stem16_1xb64_fashion-mnist.py: plain inverted
# bottlenecks, stem 16) from scratch, at the block widths of the search's
# result:
#   python tools/train.py configs/rexnet/\
#     rexnet_retrain_plain-ib-stem16_1xb64_fashion-mnist.py --cfg-options \
#     model.channel_cfgs=work_dirs/rexnet_paper_search/best.yaml
# (the config path is one word: no space after the slash)
# Trains on the first 50000 training images, validates on 2000 held-out
# training images (what the search ranks on) and tests on the 10000 test
# images (`test_dataloader` of the dataset config, test_mode=True).
# The ReXNet retraining (rexnet_retrain_1xb64_fashion-mnist.py) with the
# network of the paper-setting search.
_base_ = [
    './rexnet_retrain_1xb64_fashion-mnist.py',
    '../_base_/models/plain-ib-stem16_backbone.py',
]

model = dict(architecture=dict(
    backbone=dict(_base_.plain_ib_backbone, _delete_=True),
    head=dict(in_channels=_base_.last_channels)))
