# Retrains one network of the paper-setting search space
# (rexnet_search_plain-ib-stem16_1xb64_fashion-mnist.py: plain inverted
# bottlenecks, stem 16) from scratch, block widths given on the command
# line (best.yaml's `cfg_options` line):
#   python tools/train.py configs/rexnet/\
#     rexnet_retrain_plain-ib-stem16_1xb64_fashion-mnist.py --cfg-options \
#     model.backbone.block_channels=[16,24,32,40,48,56,64,72]
# (the config path is one word: no space after the slash)
# Trains on the first 50000 training images, validates on 2000 held-out
# training images (what the search ranks on) and tests on the 10000 test
# images (`test_dataloader` of the dataset config, test_mode=True).
_base_ = ['./rexnet_search_plain-ib-stem16_1xb64_fashion-mnist.py']

search_loop = None
model_wrapper_cfg = None

train_dataloader = dict(dataset=dict(stop=50000))

max_epochs = 30
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = dict(end=max_epochs)
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1))
